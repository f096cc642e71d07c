"""A kubeflow spark-operator ``SparkApplication`` (sparkoperator.k8s.io/v1beta2) for a prepared submission.

Where each reference goes follows what the operator does with its fields:

- the token Secret: ``spec.sparkConf`` (``spark.kubernetes.kerberos.tokenSecret.*``), which the operator's
  controller passes to spark-submit. Its own ``secrets: [{secretType: HadoopDelegationToken}]`` points
  ``HADOOP_TOKEN_FILE_LOCATION`` at a file named ``hadoop.token`` in a Secret nobody renews, so an application
  that already has one is refused rather than given two token files;
- the job's secrets as files: ``spec.{driver,executor}.template``, which Spark applies itself (0440 with the
  pods' fsGroup, as the pod-template path mounts them); the operator's webhook would replace a pod's whole
  securityContext for ``podSecurityContext``;
- the service account, image and pull policy: their ``spec`` fields, since the operator's webhook (v2.5)
  refuses those keys in ``sparkConf``; likewise a ``podTemplateFile`` there, which the operator overrides.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from spark_secrets.errors import ConfigError
from spark_secrets.secrets.tokensecret import LABEL_TOKEN_SECRET
from submit_steps.podtemplate import merge_volumes
from submit_steps.spec import SubmissionSpec

GROUP = "sparkoperator.k8s.io"
API_VERSION = f"{GROUP}/v1beta2"
#: The container names the operator gives Spark for its pod templates.
CONTAINERS = {"driver": "spark-kubernetes-driver", "executor": "spark-kubernetes-executor"}
#: sparkConf keys the operator's webhook refuses, and the spec field (of a role, or of the application) instead.
SPEC_FIELDS: dict[str, tuple[str | None, str]] = {
    "spark.kubernetes.authenticate.driver.serviceAccountName": ("driver", "serviceAccount"),
    "spark.kubernetes.authenticate.executor.serviceAccountName": ("executor", "serviceAccount"),
    "spark.kubernetes.container.image": (None, "image"),
    "spark.kubernetes.driver.container.image": ("driver", "image"),
    "spark.kubernetes.executor.container.image": ("executor", "image"),
    "spark.kubernetes.container.image.pullPolicy": (None, "imagePullPolicy"),
}
_TOKEN_CONF = "spark.kubernetes.kerberos.tokenSecret.name"


def _roles(spec: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(role, part if isinstance(part := spec.get(role), Mapping) else {}) for role in CONTAINERS]


def check_application(app: Any, namespace: str | None, source: str) -> None:
    """Fails, before anything is contacted, on a SparkApplication the job's tokens cannot be added to."""
    if not isinstance(app, Mapping) or app.get("kind") != "SparkApplication":
        raise ConfigError(f"{source} is not a SparkApplication", "give the job's SparkApplication YAML (kind: SparkApplication)")
    version = str(app.get("apiVersion", ""))
    if version != API_VERSION:
        raise ConfigError(f"{source} is a SparkApplication of {version or 'no apiVersion'}, which spark-secrets does "
                          f"not know", f"use apiVersion {API_VERSION} (spark-operator v1beta2: operator 1.1 and later)")
    spec = app.get("spec") or {}
    conf = spec.get("sparkConf") or {} if isinstance(spec, Mapping) else None
    if not isinstance(conf, Mapping):
        raise ConfigError(f"{source} has a spec or spec.sparkConf that is not a mapping",
                          "give spec and spec.sparkConf as key: value maps, as the operator's CRD does")
    for key in conf:
        if key.endswith(".podTemplateFile"):
            raise ConfigError(f"{source} sets {key} in sparkConf, which the operator replaces with its own template",
                              f"move that template into spec.{key.split('.')[2]}.template")
    if _TOKEN_CONF in conf:
        raise ConfigError(f"{source} already names a token Secret ({_TOKEN_CONF} in sparkConf)",
                          "remove it: spark-secrets makes and mounts the job's token Secret")
    for role, part in _roles(spec):
        for entry in part.get("secrets") or []:
            if isinstance(entry, Mapping) and entry.get("secretType") == "HadoopDelegationToken":
                raise ConfigError(f"{source} mounts Secret {entry.get('name')!r} as the {role}'s delegation tokens "
                                  f"(spec.{role}.secrets, secretType HadoopDelegationToken)",
                                  "remove that entry: spark-secrets makes, mounts and renews the job's token Secret")
        env = [str(e.get("name")) for e in part.get("env") or [] if isinstance(e, Mapping)]
        env += list(part.get("envVars") or {}) if isinstance(part.get("envVars"), Mapping) else []
        if "HADOOP_TOKEN_FILE_LOCATION" in env:
            raise ConfigError(f"{source} sets HADOOP_TOKEN_FILE_LOCATION for the {role}",
                              "remove it: spark-secrets points it at the mounted token Secret")
    own_map, conf_map = spec.get("hadoopConfigMap"), conf.get("spark.kubernetes.hadoop.configMapName")
    if own_map and conf_map and own_map != conf_map:
        raise ConfigError(f"{source} names two Hadoop configurations: spec.hadoopConfigMap {own_map!r} and "
                          f"spark.kubernetes.hadoop.configMapName {conf_map!r}", "keep one (spec.hadoopConfigMap)")
    given = (app.get("metadata") or {}).get("namespace")
    if namespace and given and given != namespace:
        raise ConfigError(f"{source} is in namespace {given!r} but the job's is {namespace!r} "
                          "(spark.kubernetes.namespace)", "make them the same: the token Secret goes in the job's")


def _move_to_fields(body: dict[str, Any], conf: dict[str, str], source: str) -> None:
    for key, (role, field) in SPEC_FIELDS.items():
        if key not in conf:
            continue
        value = conf.pop(key)
        part = body.setdefault(role, {}) if role else body
        if part.get(field) not in (None, value):
            raise ConfigError(f"{key}={value} differs from spec.{role + '.' if role else ''}{field} "
                              f"{part[field]!r} in {source}", "remove one of them")
        part[field] = value


def render_application(spec: SubmissionSpec, secret: str, into: Mapping[str, Any] | None = None,
                       source: str = "the SparkApplication") -> dict[str, Any]:
    """``into`` (or a new application) with the submission's conf, labels and job-secret volumes."""
    conf = spec.effective_conf()
    namespace = conf.get("spark.kubernetes.namespace", "default")
    app: dict[str, Any] = copy.deepcopy(dict(into)) if into else {
        "apiVersion": API_VERSION, "kind": "SparkApplication",
        "metadata": {"name": conf.get("spark.app.name", "spark")}, "spec": {"mode": "cluster"}}
    check_application(app, namespace, source)
    app.setdefault("metadata", {})["namespace"] = namespace
    body = app.setdefault("spec", {})
    mounted = {key for volume in spec.volumes for key in volume.replaces}
    spark_conf = {**(body.get("sparkConf") or {}), **{k: v for k, v in spec.added_conf.items() if k not in mounted}}
    # The job's account and image, given to render or set by a layout, in the fields the operator reads.
    spark_conf.update({k: v for k, v in conf.items() if k in SPEC_FIELDS})
    _move_to_fields(body, spark_conf, source)
    body["sparkConf"] = spark_conf
    for role, container in CONTAINERS.items():
        part = body.setdefault(role, {})
        if not isinstance(part, dict):
            raise ConfigError(f"spec.{role} of {source} is not a mapping", f"give spec.{role} as the CRD does")
        part["labels"] = {**(part.get("labels") or {}), LABEL_TOKEN_SECRET: secret}
        if spec.volumes and spec.fs_group is not None:
            own = part.get("template") or {"spec": {"containers": [{"name": container}]}}
            part["template"] = merge_volumes(own, spec.volumes, spec.fs_group.gid,
                                             fs_group_given=spec.fs_group.given, container=container,
                                             source=f"spec.{role}.template of {source}")
            part["template"].pop("apiVersion", None)
            part["template"].pop("kind", None)
    return app
