"""Render what a job template needs, from a prepared submission spec: a properties file, a
spark-operator ``SparkApplication``, or a pod template. Only references to the token Secret are
rendered, never its bytes.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import yaml

from spark_secrets.errors import ConfigError
from submit_steps.settings import SPARK_CREDENTIALS_DIR
from spark_secrets.secrets.tokensecret import ANNOTATION_KEY, DEFAULT_TOKEN_KEY
from spark_secrets.secrets.tokensecret import KIND_HADOOP_TOKENS, LABEL_KIND, LABEL_TOKEN_SECRET
from submit_steps.podtemplate import merge_volumes
from submit_steps.spec import SecretPlan, SubmissionSpec

FORMATS = ("properties", "spark-operator", "pod-template")
#: The deploy mode each format's job context takes: a SparkApplication's and a pod template's driver always
#: runs in a pod; a properties file's as the spark-submit options given say (Spark's default, client).
DEPLOY_MODES: dict[str, str | None] = {"properties": None, "spark-operator": "cluster", "pod-template": "cluster"}
#: Conf keys a pod template replaces (it mounts the Secret and sets the variable itself).
_TEMPLATE_REPLACES = ("spark.kubernetes.kerberos.tokenSecret.", "spark.kubernetes.executor.secrets.",
                      "spark.executorEnv.HADOOP_TOKEN_FILE_LOCATION")
VOLUME = "spark-secrets-hadoop-tokens"


def _escape(text: str, key: bool = False) -> str:
    """java.util.Properties escaping (backslash, and in keys the separators)."""
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    if key:
        for ch in ("=", ":", " "):
            text = text.replace(ch, "\\" + ch)
    return text


def properties_text(conf: Mapping[str, str], header: tuple[str, ...] = ()) -> str:
    """``conf`` as a ``java.util.Properties`` file (what ``--properties-file`` reads)."""
    lines = [f"# {line}" for line in header]
    lines += [f"{_escape(k, key=True)}={_escape(v)}" for k, v in conf.items()]
    return "\n".join(lines) + "\n"


def render_properties(spec: SubmissionSpec) -> str:
    return properties_text(spec.added_conf, ("spark-secrets: add to spark-defaults.conf, or pass with --properties-file.",
                                             "References to the job's token Secret only; no token bytes."))


def _token_secret(spec: SubmissionSpec) -> SecretPlan | None:
    return next((p for p in spec.secrets if p.labels.get(LABEL_KIND) == KIND_HADOOP_TOKENS), None)


def _secret_name(spec: SubmissionSpec) -> str:
    plan = _token_secret(spec)
    if plan is None:
        raise ConfigError("no token Secret was made, so there is nothing to render",
                          "set spark.secrets.hadoop.filesystems")
    return plan.name


def render_spark_operator(spec: SubmissionSpec, into: Mapping[str, Any] | None = None,
                          source: str = "the SparkApplication") -> str:
    """A ``SparkApplication`` (sparkoperator.k8s.io/v1beta2), merged into ``into`` when given: see
    :mod:`submit_steps.sparkapplication` for where each reference goes."""
    from submit_steps.sparkapplication import render_application

    return yaml.safe_dump(render_application(spec, _secret_name(spec), into, source), sort_keys=False)


def render_pod_template(spec: SubmissionSpec, into: Mapping[str, Any] | None = None) -> str:
    """A pod template for driver and executors (``spark.kubernetes.{driver,executor}.podTemplateFile``)
    that mounts the token Secret and sets ``HADOOP_TOKEN_FILE_LOCATION`` itself, and mounts the job's
    secrets (0440, the pod's fsGroup); merged into the job's own template ``into`` when given (its
    first container is the one Spark uses by default)."""
    return yaml.safe_dump(pod_template(spec, into), sort_keys=False)


def pod_template(spec: SubmissionSpec, into: Mapping[str, Any] | None = None,
                 source: str = "given with --into", container: str | None = None) -> dict[str, Any]:
    """:func:`render_pod_template`'s pod, as an object; the mounts go to the container named ``container`` (as
    ``podTemplateContainerName`` names Spark's), else the first."""
    pod: dict[str, Any] = copy.deepcopy(dict(into)) if into else {"apiVersion": "v1", "kind": "Pod"}
    if pod.get("kind", "Pod") != "Pod":
        raise ConfigError(f"the file {source} is not a pod template", "give the job's pod template YAML (kind: Pod)")
    plan = _token_secret(spec)
    if spec.volumes and spec.fs_group is not None:
        pod = merge_volumes(pod, spec.volumes, spec.fs_group.gid, fs_group_given=spec.fs_group.given, source=source,
                            container=container)
        if plan is None:
            return pod
    secret = _secret_name(spec)
    key = plan.annotations.get(ANNOTATION_KEY, DEFAULT_TOKEN_KEY) if plan else DEFAULT_TOKEN_KEY
    meta = pod.setdefault("metadata", {}) or {}
    pod["metadata"] = meta
    meta["labels"] = {**(meta.get("labels") or {}), LABEL_TOKEN_SECRET: secret}
    body = pod.setdefault("spec", {}) or {}
    pod["spec"] = body
    volumes = [v for v in body.get("volumes") or [] if v.get("name") != VOLUME]
    # Readable by the container's user whatever its UID (Spark images run as 185, with no fsGroup); the
    # volume is the pod's own tmpfs, and Spark's own mount of a token Secret is 0644.
    body["volumes"] = [*volumes, {"name": VOLUME, "secret": {"secretName": secret, "defaultMode": 0o444}}]
    containers = body.get("containers") or [{"name": "spark"}]
    first = next((c for c in containers if container and c.get("name") == container), containers[0])
    first["volumeMounts"] = [*(m for m in first.get("volumeMounts") or [] if m.get("name") != VOLUME),
                             {"name": VOLUME, "mountPath": SPARK_CREDENTIALS_DIR, "readOnly": True}]
    first["env"] = [*(e for e in first.get("env") or [] if e.get("name") != "HADOOP_TOKEN_FILE_LOCATION"),
                    {"name": "HADOOP_TOKEN_FILE_LOCATION", "value": f"{SPARK_CREDENTIALS_DIR}/{key}"}]
    body["containers"] = containers
    return pod


#: Spark 4.x only (3.5 ignores it): keeps Spark's built-in Kerberos step from making its own token
#: Secret when the submitting environment holds a TGT.
EXCLUDE_KERBEROS_STEP = {"spark.kubernetes.driver.pod.excludedFeatureSteps":
                         "org.apache.spark.deploy.k8s.features.KerberosConfDriverFeatureStep"}


def template_conf(spec: SubmissionSpec) -> dict[str, str]:
    """The conf still needed beside a pod template (plugin, labels), without what the template does."""
    mounted = {key for volume in spec.volumes for key in volume.replaces}
    kept = {k: v for k, v in spec.added_conf.items() if not k.startswith(_TEMPLATE_REPLACES) and k not in mounted}
    return {**kept, **EXCLUDE_KERBEROS_STEP}


def render(spec: SubmissionSpec, fmt: str, into: Mapping[str, Any] | None = None, source: str = "") -> str:
    if fmt == "properties":
        return render_properties(spec)
    if fmt == "spark-operator":
        return render_spark_operator(spec, into, source or "the SparkApplication")
    if fmt == "pod-template":
        return render_pod_template(spec, into)
    raise ConfigError(f"unknown format {fmt!r}", f"choose one of {', '.join(FORMATS)}")
