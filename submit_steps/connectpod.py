"""The Kubernetes objects of a user's own Spark Connect server, made here without a JVM: what Spark's
``KubernetesClientApplication`` creates for a cluster-mode Python application (the driver pod, its
``spark.properties`` ConfigMap, the driver's headless Service), plus the Secret of the server's bearer token.

The image's ``driver`` entry point runs ``spark-submit --deploy-mode client`` in the pod with that properties
file; Connect is Spark's own driver plugin; the program (a launcher of :mod:`spark_secrets.connect.server`,
shipped in the ConfigMap) ends the application once idle. Pure: nothing is contacted.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from urllib.parse import urlsplit
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spark_secrets.connect.names import (ANNOTATION_IDLE_TIMEOUT, ANNOTATION_TOKEN_SECRET,
                                         LABEL_CONNECT_USER)
from spark_secrets.errors import ConfigError
from spark_secrets.secrets.jobsecret import SUFFIX as JOB_SECRETS_SUFFIX
from spark_secrets.secrets.tokensecret import LABEL_MANAGED_BY, MANAGED_BY, OWNER_SEPARATOR
from submit_steps.podtemplate import load_template, merge_volumes
from submit_steps.render import pod_template, properties_text
from submit_steps.spec import SubmissionSpec

TOKEN_KEY = "token"
CONNECT_PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"
#: Where Spark's driver pod reads its conf (``SPARK_CONF_DIR`` in Spark's images and its own ConfigMap mount).
CONF_DIR = "/opt/spark/conf"
PROPERTIES = "spark.properties"
PROGRAM = "spark_secrets_connect.py"
PROGRAM_TEXT = "import sys\nfrom spark_secrets.connect.server import main\nsys.exit(main(sys.argv[1:]))\n"
EXECUTOR_TEMPLATE = "executor-pod-template.json"
#: Spark's HadoopConfDriverFeatureStep: the Hadoop client files in a ConfigMap, mounted here in driver and executors.
HADOOP_CONF_VOLUME, HADOOP_CONF_MOUNT = "hadoop-properties", "/opt/hadoop/conf"
DRIVER_CONTAINER = "spark-kubernetes-driver"
#: Spark's defaults for the driver's ports, which its Service names.
DRIVER_PORT, BLOCK_MANAGER_PORT, UI_PORT = 7078, 7079, 4040
#: Settings for the submitter only: host paths, or what this module puts in the pod instead.
_SUBMITTER_ONLY = ("spark.kubernetes.driver.podTemplateFile", "spark.kubernetes.executor.podTemplateFile",
                   "spark.kubernetes.kerberos.tokenSecret.name", "spark.kubernetes.kerberos.tokenSecret.itemKey")


def label_value(text: str) -> str:
    """``text`` made a label value and the start of a DNS name: lowercase letters, digits and '-', at most 30."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:30].strip("-") or "user"


@dataclass(frozen=True)
class ServerObjects:
    """A server's objects, to create in this order: the ConfigMap and the token Secret (the pod mounts them),
    the pod, the Service. ``bearer`` is secret: ``repr`` shows only names."""

    name: str
    namespace: str
    config_map: dict[str, Any]
    bearer: dict[str, Any] = field(repr=False)
    pod: dict[str, Any] = field(repr=False)
    service: dict[str, Any] = field(repr=False)
    #: The Hadoop client files of the notebook's ``HADOOP_CONF_DIR``, when no ConfigMap is named for them.
    hadoop_conf: dict[str, Any] | None = None

    def owned(self) -> list[dict[str, Any]]:
        """What the driver pod owns, to create once it exists."""
        return [self.config_map, self.bearer, self.service, *([self.hadoop_conf] if self.hadoop_conf else [])]

    @property
    def pod_name(self) -> str:
        return str(self.pod["metadata"]["name"])


def bearer_secret_name(user: str, server: str) -> str:
    """The Secret of ``server``'s bearer token, named as ``user``'s job secrets (``<user>--…-job-secrets``)."""
    return f"{label_value(user)}{OWNER_SEPARATOR}{server}{JOB_SECRETS_SUFFIX}"


def _prefixed(conf: Mapping[str, str], prefix: str) -> dict[str, str]:
    return {k[len(prefix):]: v for k, v in conf.items() if k.startswith(prefix) and len(k) > len(prefix)}


def _memory_mib(text: str) -> int:
    """Spark's memory string (``768m``, ``2g``; bare numbers are MiB) in MiB."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)b?\s*", text.lower())
    if not match:
        raise ConfigError(f"spark.driver.memory={text!r} is not a size", "give it as Spark does, e.g. 1g or 768m")
    scale = {"k": 1 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024 * 1024}[match.group(2)]
    return max(1, int(int(match.group(1)) * scale))


def _overhead_factor(conf: Mapping[str, str]) -> float:
    """Spark's for a Python application: the driver's or Kubernetes' factor when set, else 0.4 (which Spark then
    hands to the executors too)."""
    text = conf.get("spark.driver.memoryOverheadFactor") or conf.get("spark.kubernetes.memoryOverheadFactor") or "0.4"
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"memory overhead factor {text!r} is not a number", "give a fraction such as 0.4") from None


def _resources(conf: Mapping[str, str]) -> dict[str, Any]:
    """The driver container's requests and limits, as Spark sets them: memory plus its overhead (at least 384 MiB)
    requested and capped; cores requested, capped only when asked."""
    memory = _memory_mib(conf.get("spark.driver.memory", "1g"))
    overhead = conf.get("spark.driver.memoryOverhead")
    total = memory + (_memory_mib(overhead) if overhead else max(384, int(memory * _overhead_factor(conf))))
    cpu = conf.get("spark.kubernetes.driver.request.cores") or conf.get("spark.driver.cores", "1")
    limits: dict[str, str] = {"memory": f"{total}Mi"}
    if conf.get("spark.kubernetes.driver.limit.cores"):
        limits["cpu"] = conf["spark.kubernetes.driver.limit.cores"]
    return {"requests": {"cpu": cpu, "memory": f"{total}Mi"}, "limits": limits}


#: Files Spark's client would upload from this machine (BasicDriverFeatureStep); a server made here cannot.
_UPLOADED = ("spark.jars", "spark.files", "spark.archives", "spark.submit.pyFiles")


def check(conf: Mapping[str, str], starting: bool = True) -> None:
    """Fails on settings a server's objects cannot be built from, before anything is contacted (``starting``
    False: only what finding a running server needs)."""
    if not conf.get("spark.master", "").startswith("k8s://"):
        raise ConfigError("a Connect server runs on Kubernetes: spark.master is not k8s://",
                          "set spark.master to k8s://https://<your API server>")
    _resources(conf)
    _driver_volumes(conf)
    driver_credentials = [k for k in conf if k.startswith("spark.kubernetes.authenticate.driver.")
                          and k != "spark.kubernetes.authenticate.driver.serviceAccountName"]
    if driver_credentials:
        raise ConfigError(f"{driver_credentials[0]}: a Connect server's driver uses its service account only",
                          "remove it and set spark.kubernetes.authenticate.driver.serviceAccountName")
    for key in _UPLOADED:
        local = [u for u in (conf.get(key) or "").split(",") if u.strip() and urlsplit(u.strip()).scheme in ("", "file")]
        if local:
            raise ConfigError(f"{key} names {local[0].strip()}, a file of this machine the server's pods cannot read",
                              "put it in the image (local:///...) or on a filesystem the pods read (hdfs://, s3a://)")
    if starting and not (conf.get("spark.kubernetes.driver.container.image") or conf.get("spark.kubernetes.container.image")):
        raise ConfigError("no image for the Connect server's pods", "set spark.kubernetes.container.image")


def _properties(conf: Mapping[str, str], templated: set[str]) -> dict[str, str]:
    """The conf for the driver in the pod: without what only a submitter reads (host paths, its own credentials)
    or what the pod mounts itself."""
    return {k: v for k, v in conf.items() if k not in _SUBMITTER_ONLY and k not in templated and "oauthToken" not in k
            and not k.startswith("spark.kubernetes.authenticate.submission.")}


def build(spec: SubmissionSpec, user: str, token: str, idle_seconds: float, port: int,
          hadoop_files: Mapping[str, str] | None = None) -> ServerObjects:
    """The objects of a new server of ``user``'s for the prepared ``spec`` (its token Secret already planned);
    ``hadoop_files``: the notebook's Hadoop client configuration, shipped as Spark ships it."""
    conf = spec.effective_conf()
    check(conf)
    namespace = conf.get("spark.kubernetes.namespace") or "default"
    owner = label_value(user)
    name = f"connect-{owner}-{uuid.uuid4().hex[:6]}"
    app_id = f"spark-{uuid.uuid4().hex}"
    # The bearer token's Secret is named as a job's secrets of its owner's (``<user>--…-job-secrets``): in the shared
    # layouts the pod policy lets only the owner's pods use it.
    names = {"pod": f"{name}-driver", "service": f"{name}-driver-svc", "conf": f"{name}-conf",
             "bearer": bearer_secret_name(user, name)}
    # The job's secrets, 0440 with the pods' group, as submit mounts them: in the driver pod and the executors'
    # template, in place of Spark's own mounts.
    templated = {key for volume in spec.volumes for key in volume.replaces} if spec.fs_group is not None else set()
    files: dict[str, str] = {PROGRAM: PROGRAM_TEXT}
    properties = _properties(conf, templated if spec.volumes else set())
    executor_template = conf.get("spark.kubernetes.executor.podTemplateFile")
    executor_pod = load_template(executor_template) if executor_template else None
    if spec.volumes and spec.fs_group is not None:
        executor_pod = merge_volumes(executor_pod, spec.volumes, spec.fs_group.gid, fs_group_given=spec.fs_group.given,
                                     source=executor_template or "",
                                     container=conf.get("spark.kubernetes.executor.podTemplateContainerName"))
    if executor_pod is not None:
        files[EXECUTOR_TEMPLATE] = json.dumps(executor_pod, indent=1)
        properties["spark.kubernetes.executor.podTemplateFile"] = f"{CONF_DIR}/{EXECUTOR_TEMPLATE}"
    hadoop_map = conf.get("spark.kubernetes.hadoop.configMapName") or (f"{name}-hadoop-config" if hadoop_files else None)
    if hadoop_map:
        properties["spark.kubernetes.executor.hadoopConfigMapName"] = hadoop_map
    properties.update({
        "spark.app.id": app_id, "spark.app.name": conf.get("spark.app.name") or name,
        "spark.submit.deployMode": "cluster", "spark.kubernetes.submitInDriver": "true",
        "spark.kubernetes.namespace": namespace, "spark.kubernetes.driver.pod.name": names["pod"],
        "spark.kubernetes.executor.podNamePrefix": name, "spark.kubernetes.resource.type": "python",
        "spark.kubernetes.memoryOverheadFactor": str(_overhead_factor(conf)),
        "spark.driver.host": f"{names['service']}.{namespace}.svc",
        "spark.driver.port": conf.get("spark.driver.port") or str(DRIVER_PORT),
        "spark.driver.blockManager.port": conf.get("spark.driver.blockManager.port") or str(BLOCK_MANAGER_PORT),
        "spark.connect.grpc.binding.port": str(port),
    })
    # Not Connect as a driver plugin: a plugin starts it inside SparkContext's constructor, which then waits up to
    # 30 s for executors before the context is active, and a query arriving then fails on Spark's
    # ``SparkContext.getActive.get`` (``None.get``). The server's program starts it once the context is up.
    plugins = [p.strip() for p in (conf.get("spark.plugins") or "").split(",") if p.strip() and p.strip() != CONNECT_PLUGIN]
    properties.pop("spark.plugins", None)
    if plugins:
        properties["spark.plugins"] = ",".join(plugins)
    files[PROPERTIES] = properties_text(properties, ("Spark Connect server of " + owner + " (spark-secrets connect)",))
    labels = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_CONNECT_USER: owner}

    def meta(name: str) -> dict[str, Any]:
        return {"name": name, "namespace": namespace, "labels": labels}

    pod = _driver_pod(spec, conf, properties, names, labels, user, idle_seconds, port, templated, hadoop_map)
    return ServerObjects(
        name, namespace, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(names["conf"]), "data": files},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": meta(names["bearer"]),
         "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()}},
        pod, _service(pod, meta(names["service"])),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(hadoop_map), "data": dict(hadoop_files or {})}
        if hadoop_map and not conf.get("spark.kubernetes.hadoop.configMapName") else None)


def _driver_pod(spec: SubmissionSpec, conf: Mapping[str, str], properties: Mapping[str, str], names: Mapping[str, str],
                labels: Mapping[str, str], user: str, idle_seconds: float, port: int, templated: set[str],
                hadoop_map: str | None) -> dict[str, Any]:
    """The driver pod, from the user's driver template: Spark's driver feature steps, done here."""
    source = conf.get("spark.kubernetes.driver.podTemplateFile")
    wanted = conf.get("spark.kubernetes.driver.podTemplateContainerName")
    pod = pod_template(spec, load_template(source) if source else None, source or "", container=wanted)
    pod.update({"apiVersion": "v1", "kind": "Pod"})
    meta = pod.get("metadata") or {}
    meta.update({"name": names["pod"], "namespace": properties["spark.kubernetes.namespace"],
                 "labels": {**(meta.get("labels") or {}), **_prefixed(conf, "spark.kubernetes.driver.label."), **labels,
                            "spark-app-selector": properties["spark.app.id"], "spark-role": "driver",
                            "spark-app-name": label_value(properties["spark.app.name"])},
                 "annotations": {**(meta.get("annotations") or {}), **_prefixed(conf, "spark.kubernetes.driver.annotation."),
                                 ANNOTATION_TOKEN_SECRET: names["bearer"], ANNOTATION_IDLE_TIMEOUT: f"{idle_seconds:g}"}})
    pod["metadata"] = meta
    body = pod["spec"]
    body["restartPolicy"] = "Never"
    if account := conf.get("spark.kubernetes.authenticate.driver.serviceAccountName"):
        body["serviceAccountName"] = account
    nodes = {**_prefixed(conf, "spark.kubernetes.node.selector."), **_prefixed(conf, "spark.kubernetes.driver.node.selector.")}
    if nodes:
        body["nodeSelector"] = {**(body.get("nodeSelector") or {}), **nodes}
    if pulls := [p.strip() for p in conf.get("spark.kubernetes.container.image.pullSecrets", "").split(",") if p.strip()]:
        body["imagePullSecrets"] = [*(body.get("imagePullSecrets") or []), *({"name": p} for p in pulls)]
    if scheduler := conf.get("spark.kubernetes.driver.scheduler.name") or conf.get("spark.kubernetes.scheduler.name"):
        body["schedulerName"] = scheduler
    containers = body.setdefault("containers", [{}]) or [{}]
    body["containers"] = containers
    container = next((c for c in containers if wanted and c.get("name") == wanted), containers[0])
    local_dir = f"/var/data/spark-{uuid.uuid4()}"  # Spark's LocalDirsFeatureStep
    volumes, mounts = _driver_volumes(conf)
    for secret, path in _prefixed(conf, "spark.kubernetes.driver.secrets.").items():  # Spark's MountSecretsFeatureStep
        if f"spark.kubernetes.driver.secrets.{secret}" not in templated:
            volumes.append({"name": f"{secret}-volume", "secret": {"secretName": secret}})
            mounts.append({"name": f"{secret}-volume", "mountPath": path})
    volumes += [{"name": "spark-conf-volume-driver", "configMap": {"name": names["conf"], "defaultMode": 0o644}},
                {"name": "spark-local-dir-1", "emptyDir": {}}]
    mounts += [{"name": "spark-conf-volume-driver", "mountPath": CONF_DIR}, {"name": "spark-local-dir-1", "mountPath": local_dir}]
    env = [*_driver_env(conf, user, properties["spark.app.id"], names["bearer"]),
           {"name": "SPARK_LOCAL_DIRS", "value": local_dir}]
    if hadoop_map:  # Spark's HadoopConfDriverFeatureStep
        volumes.append({"name": HADOOP_CONF_VOLUME, "configMap": {"name": hadoop_map}})
        mounts.append({"name": HADOOP_CONF_VOLUME, "mountPath": HADOOP_CONF_MOUNT})
        env.append({"name": "HADOOP_CONF_DIR", "value": HADOOP_CONF_MOUNT})
    body["volumes"] = [*(body.get("volumes") or []), *volumes]
    ports = [("driver-rpc-port", int(properties["spark.driver.port"])),
             ("blockmanager", int(properties["spark.driver.blockManager.port"])), ("spark-connect", port)]
    if conf.get("spark.ui.enabled", "true").lower() != "false":
        ports.append(("spark-ui", int(conf.get("spark.ui.port") or UI_PORT)))
    ours = {e["name"] for e in env}
    container.update({
        "name": container.get("name") or DRIVER_CONTAINER, "image": _image(conf),
        "imagePullPolicy": conf.get("spark.kubernetes.container.image.pullPolicy", "IfNotPresent"),
        "args": ["driver", "--properties-file", f"{CONF_DIR}/{PROPERTIES}", "--class",
                 "org.apache.spark.deploy.PythonRunner", f"local://{CONF_DIR}/{PROGRAM}", f"{idle_seconds:g}"],
        "resources": _resources(conf),
        "volumeMounts": [*(container.get("volumeMounts") or []), *mounts],
        "env": [*(e for e in container.get("env") or [] if e.get("name") not in ours), *env],
        "ports": [{"name": n, "containerPort": p} for n, p in ports]})
    return pod


def _image(conf: Mapping[str, str]) -> str:
    return str(conf.get("spark.kubernetes.driver.container.image") or conf.get("spark.kubernetes.container.image"))


def _service(pod: Mapping[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The driver's headless Service (Spark's DriverServiceFeatureStep), with the Connect port beside Spark's."""
    labels = pod["metadata"]["labels"]
    (container,) = [c for c in pod["spec"]["containers"] if c.get("args", [None])[0] == "driver"]
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"clusterIP": "None",
                     "selector": {"spark-app-selector": labels["spark-app-selector"], "spark-role": "driver"},
                     "ports": [{"name": p["name"], "port": p["containerPort"], "targetPort": p["containerPort"]}
                               for p in container["ports"]]}}


def _driver_volumes(conf: Mapping[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Spark's MountVolumesFeatureStep for the driver: ``spark.kubernetes.driver.volumes.<type>.<name>.*`` as pod
    volumes and mounts (hostPath, emptyDir, persistentVolumeClaim)."""
    kinds = {"hostPath": ("hostPath", {"path": "path", "type": "type"}),
             "emptyDir": ("emptyDir", {"medium": "medium", "sizeLimit": "sizeLimit"}),
             "persistentVolumeClaim": ("persistentVolumeClaim", {"claimName": "claimName", "readOnly": "readOnly"})}
    found: dict[tuple[str, str], dict[str, str]] = {}
    for key, value in _prefixed(conf, "spark.kubernetes.driver.volumes.").items():
        kind, _, rest = key.partition(".")
        name, _, option = rest.partition(".")
        if kind not in kinds or not name or not option:
            raise ConfigError(f"spark.kubernetes.driver.volumes.{key}: not a volume setting Spark knows",
                              "use spark.kubernetes.driver.volumes.{hostPath,emptyDir,persistentVolumeClaim}.<name>.*")
        found.setdefault((kind, name), {})[option] = value
    volumes, mounts = [], []
    for (kind, name), options in found.items():
        if "mount.path" not in options:
            raise ConfigError(f"spark.kubernetes.driver.volumes.{kind}.{name}.mount.path is not set", "give the mount path")
        field_name, names = kinds[kind]
        source: dict[str, Any] = {names[k.removeprefix("options.")]: v for k, v in options.items()
                                  if k.removeprefix("options.") in names and k.startswith("options.")}
        if "readOnly" in source:
            source["readOnly"] = source["readOnly"].lower() == "true"
        volumes.append({"name": name, field_name: source})
        mount: dict[str, Any] = {"name": name, "mountPath": options["mount.path"],
                                 "readOnly": options.get("mount.readOnly", "false").lower() == "true"}
        if options.get("mount.subPath"):
            mount["subPath"] = options["mount.subPath"]
        mounts.append(mount)
    return volumes, mounts


def _driver_container(body: dict[str, Any], conf: Mapping[str, str]) -> dict[str, Any]:
    """The template's container Spark would use: the one ``podTemplateContainerName`` names, else the first."""
    containers = body.setdefault("containers", [{}]) or [{}]
    body["containers"] = containers
    wanted = conf.get("spark.kubernetes.driver.podTemplateContainerName")
    return next((c for c in containers if wanted and c.get("name") == wanted), containers[0])


def _driver_env(conf: Mapping[str, str], user: str, app_id: str, bearer: str) -> list[dict[str, Any]]:
    """What Spark's driver feature steps put in its environment, and the bearer token from its Secret."""
    env: list[dict[str, Any]] = [
        {"name": "SPARK_USER", "value": user}, {"name": "SPARK_APPLICATION_ID", "value": app_id},
        {"name": "SPARK_DRIVER_BIND_ADDRESS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "SPARK_CONF_DIR", "value": CONF_DIR},
        {"name": "SPARK_CONNECT_AUTHENTICATE_TOKEN",
         "valueFrom": {"secretKeyRef": {"name": bearer, "key": TOKEN_KEY}}}]
    env += [{"name": k, "value": v} for k, v in _prefixed(conf, "spark.kubernetes.driverEnv.").items()]
    for var, ref in _prefixed(conf, "spark.kubernetes.driver.secretKeyRef.").items():  # Spark's EnvSecretsFeatureStep
        secret, _, key = ref.partition(":")
        env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    return env
