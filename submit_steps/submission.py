"""A submission from start to end: preflight, steps, the Secret, spark-submit, ownership, cleanup.

Order matters: everything that can fail without side effects (settings, RBAC preflight, the TGT,
the NameNodes) happens before the Secret is created; a failure after that deletes it; once the
driver pod exists the Secret is made the pod's, so Kubernetes deletes it with the job.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from spark_secrets.errors import SparkSecretsError
from spark_secrets.errors import KubernetesForbidden, KubernetesNotFound
from spark_secrets.kube import KubeClient, ObjectRef
from submit_steps.builder import StepBuilder
from submit_steps.jobsecrets import JobSecretsStep
from submit_steps.layout import LayoutStep
from submit_steps.podtemplate import ROLES, check_templates, with_pod_templates
from submit_steps.sparkconf import insert_conf_flags
from spark_secrets.tokensecret import LABEL_TOKEN_SECRET
from submit_steps.spec import SecretPlan, SubmissionSpec, Target

Progress = Callable[[str], None]


def stderr_progress(message: str) -> None:
    print(f"spark-secrets: {message}", file=sys.stderr, flush=True)


class Submission:
    def __init__(self, conf: Mapping[str, str], kube: KubeClient, *, builder: StepBuilder | None = None,
                 progress: Progress = stderr_progress, template_roles: Sequence[str] = ()) -> None:
        """``template_roles``: the pods (driver, executor) whose secret volumes go in pod templates this
        submission writes (see :mod:`submit_steps.podtemplate`); the wrapper does it for both."""
        self.builder = builder or StepBuilder(conf)
        self.settings = self.builder.settings
        self.kube = kube
        job_secrets = self.builder.step(JobSecretsStep)
        if isinstance(job_secrets, JobSecretsStep) and job_secrets.kube is None:
            job_secrets.kube = kube  # checks k8s: references before anything is created
        self.progress = progress
        self.created: list[ObjectRef] = []
        #: The label selector that finds the driver pod of each created Secret.
        self.selectors: dict[str, str] = {}
        self.owner: ObjectRef | None = None
        #: The layout lets the submitter only create Secrets: the renew service attaches and cleans up.
        self.handed_over = False
        self.template_roles = tuple(template_roles)
        #: Where the pod templates were written (the caller removes it when the job no longer needs them).
        self.template_dir: Path | None = None

    # -- phases ----------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Fail early, creating nothing, if the user may not create the Secret in the namespace."""
        if not (self.settings.enabled and (self.settings.wants_tokens or self.settings.job_secrets)):
            return
        layout = self.builder.step(LayoutStep)
        target = layout.target() if isinstance(layout, LayoutStep) else Target(self.settings.namespace)
        namespace = target.namespace
        if self.settings.job_secrets and not self.kube.can_i("create", "secrets", namespace):
            raise KubernetesForbidden(f"you may not create Secrets in namespace {namespace} for the job's secrets",
                                      "submit to a namespace where you may, or ask an admin for a RoleBinding there")
        if not self.settings.wants_tokens:
            return
        if target.fill:
            if not self.kube.can_i("patch", "secrets", namespace, name=target.fill):
                raise KubernetesForbidden(f"you may not fill the pre-created Secret {namespace}/{target.fill}",
                                          "ask an admin to apply the precreated layout for you (spark-secrets rbac)")
        elif not self.kube.can_i("create", "secrets", namespace):
            raise KubernetesForbidden(f"you may not create Secrets in namespace {namespace}",
                                      "submit to a namespace where you may (spark.kubernetes.namespace), "
                                      "or ask an admin for a RoleBinding there")

    def prepare(self) -> SubmissionSpec:
        """Preflight, run the steps, create the Secrets. On failure nothing is left behind."""
        if self.template_roles:
            check_templates(self.settings, self.template_roles)
        self.preflight()
        spec = self.builder.run()
        if self.template_roles and spec.volumes:
            self.template_dir = self.template_dir or Path(tempfile.mkdtemp(prefix="spark-secrets-pods-"))
            spec = with_pod_templates(spec, self.template_dir, self.template_roles)
        for note in spec.notes:
            self.progress(note)
        try:
            for plan in spec.secrets:
                if plan.fill:  # an admin's Secret that outlives the job: never owned, never deleted by us
                    self._fill(plan)
                    continue
                ref = self.kube.create_secret(plan.manifest())
                self.created.append(ref)
                if plan.driver_selector:
                    self.selectors[ref.name] = plan.driver_selector
                self.progress(f"created Secret {plan.namespace}/{plan.name}")
        except BaseException:
            self.cleanup()
            raise
        return spec

    def _fill(self, plan: SecretPlan) -> None:
        try:
            self.kube.patch_secret(plan.namespace, plan.name, plan.fill_patch())
        except KubernetesNotFound:
            raise KubernetesNotFound(f"the pre-created Secret {plan.namespace}/{plan.name} does not exist",
                                     "ask an admin to apply the precreated layout for you (spark-secrets rbac)") from None
        self.progress(f"filled the pre-created Secret {plan.namespace}/{plan.name}")

    def cleanup(self) -> None:
        """Delete what this submission created and nobody owns yet."""
        if self.owner is not None:
            return
        for ref in reversed(self.created):
            try:
                self.kube.delete_secret(ref.namespace, ref.name, uid=ref.uid)
                self.progress(f"deleted Secret {ref.namespace}/{ref.name}")
            except KubernetesForbidden:
                self.progress(f"you may not delete Secret {ref.namespace}/{ref.name}; the renew service deletes it "
                              "once its grace period has passed")
            except SparkSecretsError as exc:
                self.progress(f"could not delete Secret {ref.namespace}/{ref.name}: {exc}")
        self.created.clear()

    def adopt(self) -> ObjectRef | None:
        """If the driver pod exists, make it own the Secrets; returns it."""
        if self.owner is not None or not self.created or self.handed_over:
            return self.owner
        secret = self.created[0]
        selector = self.selectors.get(secret.name, f"{LABEL_TOKEN_SECRET}={secret.name}")
        pods = self.kube.find_pods(secret.namespace, f"{selector},spark-role=driver")
        if not pods:
            return None
        try:
            for ref in self.created:
                self.kube.set_owner(ref, pods[0])
        except KubernetesForbidden:
            self.handed_over = True
            self.progress(f"you may not change Secret {secret.name}; the renew service attaches it to driver pod "
                          f"{pods[0].name}")
            return None
        self.owner = pods[0]
        self.progress(f"Secret {secret.name} is now owned by driver pod {pods[0].name}")
        return self.owner

    # -- the wrapper -----------------------------------------------------------------------------
    def run_spark_submit(self, args: Sequence[str], spark_submit: str = "spark-submit",
                         env: Mapping[str, str] | None = None, poll: float = 0.5, log: Path | None = None) -> int:
        """``spark-submit`` with the steps' flags added; returns its exit status. Its output goes to
        this process's, or to the file ``log``."""
        self.template_roles = self.template_roles or ROLES  # spark-submit reads them while this runs
        try:
            return self._run_spark_submit(args, spark_submit, env, poll, log)
        finally:
            if self.template_dir is not None:
                shutil.rmtree(self.template_dir, ignore_errors=True)

    def _run_spark_submit(self, args: Sequence[str], spark_submit: str, env: Mapping[str, str] | None,
                          poll: float, log: Path | None) -> int:
        import subprocess

        spec = self.prepare()
        argv = [spark_submit, *insert_conf_flags(args, spec.conf_flags())]
        run_env = dict(os.environ if env is None else env)
        local_file: Path | None = None
        if spec.credentials is not None and not self._is_cluster_mode():
            from submit_steps.local import private_token_file

            local_file = private_token_file(spec.credentials, self.settings.token_file_format)
            run_env["HADOOP_TOKEN_FILE_LOCATION"] = str(local_file)
        if spec.local_secrets is not None and not self._is_cluster_mode():
            run_env.update(spec.local_secrets.materialize())  # this driver runs here: files and env, private
        stop = threading.Event()

        def watch_for_driver() -> None:
            while not stop.wait(poll):
                try:
                    if self.adopt() is not None or self.handed_over:
                        return
                except SparkSecretsError as exc:
                    self.progress(f"cannot attach the Secret to the driver pod yet: {exc}")

        watcher = threading.Thread(target=watch_for_driver, name="spark-secrets-adopt", daemon=True)
        watcher.start()
        try:
            self.progress(f"running {Path(spark_submit).name} with {len(spec.added_conf)} added settings")
            if log is not None:
                with open(log, "ab") as out:
                    proc = subprocess.run(argv, env=run_env, stdout=out, stderr=subprocess.STDOUT)
            else:
                proc = subprocess.run(argv, env=run_env)
            stop.set()
            watcher.join()
            if self.adopt() is None and proc.returncode == 0 and self._is_cluster_mode():
                deadline = time.monotonic() + 10
                while self.adopt() is None and not self.handed_over and time.monotonic() < deadline:
                    time.sleep(poll)
            if self.created and self.owner is None and not (self.handed_over and proc.returncode == 0):
                why = "spark-submit failed" if proc.returncode else "no driver pod owns them"
                self.progress(f"{why}: removing the job's Secrets")
                self.cleanup()
            return proc.returncode
        except BaseException:
            stop.set()
            self.cleanup()
            raise
        finally:
            if local_file is not None:
                local_file.unlink(missing_ok=True)

    def _is_cluster_mode(self) -> bool:
        return self.settings.conf.get("spark.submit.deployMode", "client") == "cluster"
