"""Pod templates the submission writes for the job's secret volumes, merged into the job's own.

Spark's own secret mounts (``spark.kubernetes.{driver,executor}.secrets.*``) make every file 0644:
any user in the container reads it. A pod template can ask for more: the Secret volume with
``defaultMode`` 0440 and the pod's ``securityContext.fsGroup``, which kubelet makes the files' group
and adds to the groups of the pod's processes. Kubernetes cannot give a Secret's files to a user
(they stay root's), so that group is what keeps them from the container's other users.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from spark_secrets.errors import ConfigError
from submit_steps.settings import Settings
from submit_steps.spec import SecretVolume, SubmissionSpec

ROLES = ("driver", "executor")
#: The files' mode: read by root and the pod's group; kubelet would add group read to 0400 anyway.
MODE = 0o440
VOLUME_PREFIX = "spark-secrets-job-"


def _local_path(location: str) -> Path | None:
    """The local file of a ``podTemplateFile`` setting, or None for a remote one (Spark reads those
    through Hadoop's filesystems, which this process does not)."""
    parts = urlsplit(location)
    if parts.scheme in ("", "file"):
        return Path(parts.path if parts.scheme else location)
    return None


def load_template(location: str) -> dict[str, Any]:
    import yaml  # here: 15 ms of a cold `conf`, spared where nothing else reads YAML (in a pod, no kubeconfig)

    path = _local_path(location)
    assert path is not None
    try:
        pod = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the pod template {location}: {type(exc).__name__}",
                          "give spark.kubernetes.*.podTemplateFile a readable YAML or JSON pod") from None
    if not isinstance(pod, dict) or pod.get("kind", "Pod") != "Pod":
        raise ConfigError(f"the pod template {location} is not a Pod", "give a pod template (kind: Pod)")
    return pod


def merge_volumes(template: Mapping[str, Any] | None, volumes: Sequence[SecretVolume], fs_group: int, *,
                  fs_group_given: bool = False, container: str | None = None, source: str = "") -> dict[str, Any]:
    """``template`` (or an empty pod) with ``volumes`` mounted read-only in Spark's container (the one named
    ``container``, else the first, as Spark picks it) and the pod's fsGroup set unless it has one."""
    pod: dict[str, Any] = copy.deepcopy(dict(template)) if template else {"apiVersion": "v1", "kind": "Pod"}
    body = pod.get("spec") or {}
    pod["spec"] = body
    context = body.get("securityContext") or {}
    own = context.get("fsGroup")
    if own is None:
        context["fsGroup"] = fs_group
    elif fs_group_given and own != fs_group:
        raise ConfigError(f"spark.secrets.dir.fsGroup={fs_group} differs from fsGroup {own} in the pod template "
                          f"{source}", "remove one of them (the template's own fsGroup is used when the setting is unset)")
    body["securityContext"] = context
    names = [f"{VOLUME_PREFIX}{i}" for i in range(len(volumes))]
    kept = [v for v in body.get("volumes") or [] if not str(v.get("name", "")).startswith(VOLUME_PREFIX)]
    body["volumes"] = kept + [{"name": name, "secret": {"secretName": v.secret, "defaultMode": MODE}}
                              for name, v in zip(names, volumes)]
    containers = body.get("containers") or [{}]
    spark = next((c for c in containers if container and c.get("name") == container), containers[0])
    mounts = [m for m in spark.get("volumeMounts") or [] if not str(m.get("name", "")).startswith(VOLUME_PREFIX)]
    spark["volumeMounts"] = mounts + [{"name": name, "mountPath": v.mount_path, "readOnly": True}
                                      for name, v in zip(names, volumes)]
    body["containers"] = containers
    return pod


def _own_templates(conf: Mapping[str, str], roles: Sequence[str]) -> dict[str, str | None]:
    return {role: conf.get(f"spark.kubernetes.{role}.podTemplateFile") for role in roles}


def _remote(own: Mapping[str, str | None]) -> str | None:
    return next((loc for loc in own.values() if loc and _local_path(loc) is None), None)


def check_template(settings: Settings, pod: Mapping[str, Any], source: str) -> None:
    """Fails, before anything is contacted, on a template the job's secret volumes cannot be merged into."""
    if settings.job_secrets and settings.secrets_fs_group is not None:
        merge_volumes(pod, [], settings.secrets_fs_group, fs_group_given=settings.secrets_fs_group_given,
                      source=source)


def check_templates(settings: Settings, roles: Sequence[str] = ROLES) -> None:
    """:func:`check_template` for the job's own templates named in its conf (local ones: Spark reads the rest)."""
    if not settings.job_secrets or settings.secrets_fs_group is None:
        return
    own = _own_templates(settings.conf, roles)
    if _remote(own) is None:
        for location in filter(None, own.values()):
            check_template(settings, load_template(location), location)


def with_pod_templates(spec: SubmissionSpec, directory: Path, roles: Sequence[str] = ROLES) -> SubmissionSpec:
    """``spec`` with its secret volumes in pod templates written to ``directory`` for ``roles``, in place of
    Spark's mounts; unchanged without volumes (``spark.secrets.dir.fsGroup=none`` makes none), and when a
    role's own template is remote (a note then says the files are Spark's 0644 mounts)."""
    fs_group = spec.fs_group
    if not spec.volumes or fs_group is None:
        return spec
    conf = spec.effective_conf()
    own = _own_templates(conf, roles)
    remote = _remote(own)
    if remote:
        return spec.add_note(f"job-secret files are Spark's own mounts (mode 0644): the pod template {remote} "
                             "is not a local file to merge into")
    replaced = {key for volume in spec.volumes for key in volume.replaces}
    added = dict(spec.added_conf)
    groups = set()
    for role in roles:
        location = own[role]
        pod = merge_volumes(load_template(location) if location else None, spec.volumes, fs_group.gid,
                            fs_group_given=fs_group.given, source=location or "",
                            container=conf.get(f"spark.kubernetes.{role}.podTemplateContainerName"))
        groups.add(str(pod["spec"]["securityContext"]["fsGroup"]))
        path = directory / f"{role}-pod-template.json"
        path.write_text(json.dumps(pod, indent=1))
        added = {k: v for k, v in added.items() if not (k in replaced and k.startswith(f"spark.kubernetes.{role}."))}
        added[f"spark.kubernetes.{role}.podTemplateFile"] = str(path)
    return replace(spec, added_conf=added).add_note(
        f"job-secret files mode {MODE:04o}, group {'/'.join(sorted(groups))} (the pods' fsGroup), "
        f"through pod templates in {directory}")
