"""Step 3: wire driver and executor pods to the token Secret, by reference only.

The driver gets it through Spark's own Kerberos step, pointed at our Secret
(``spark.kubernetes.kerberos.tokenSecret.*``): Spark mounts it at ``/mnt/secrets/hadoop-credentials``,
sets ``HADOOP_TOKEN_FILE_LOCATION`` and, having an existing Secret, creates no immutable token Secret
of its own (Spark 3.0 to 4.x). Executors get the same Secret through ``spark.kubernetes.executor.secrets.*``
and the same variable through ``spark.executorEnv``.
"""

from __future__ import annotations

from submit_steps.settings import SPARK_CREDENTIALS_DIR
from spark_secrets.secrets.tokensecret import KIND_HADOOP_TOKENS, LABEL_KIND, LABEL_TOKEN_SECRET
from submit_steps.spec import SubmissionSpec
from submit_steps.step import SubmitStep

class PodWiringStep(SubmitStep):
    @property
    def enabled(self) -> bool:
        return self.settings.wants_tokens

    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        secret = next((p for p in spec.secrets if p.labels.get(LABEL_KIND) == KIND_HADOOP_TOKENS), None)
        if not self.enabled or secret is None:
            return spec
        key = self.settings.secret_key
        token_file = f"{SPARK_CREDENTIALS_DIR}/{key}"
        return spec.add_conf({
            "spark.kubernetes.kerberos.tokenSecret.name": secret.name,
            "spark.kubernetes.kerberos.tokenSecret.itemKey": key,
            f"spark.kubernetes.executor.secrets.{secret.name}": SPARK_CREDENTIALS_DIR,
            "spark.executorEnv.HADOOP_TOKEN_FILE_LOCATION": token_file,
            f"spark.kubernetes.driver.label.{LABEL_TOKEN_SECRET}": secret.name,
            f"spark.kubernetes.executor.label.{LABEL_TOKEN_SECRET}": secret.name,
        }).add_note(f"driver and executors mount {secret.name} at {SPARK_CREDENTIALS_DIR}; "
                    f"HADOOP_TOKEN_FILE_LOCATION={token_file}")
