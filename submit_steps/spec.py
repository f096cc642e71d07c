"""The submission spec that steps transform: Spark conf additions and Kubernetes objects to create."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from spark_secrets.hadoop.credentials import Credentials

from spark_secrets.secrets.tokensecret import ANNOTATION_RENEWED_AT
from submit_steps.local import LocalSecrets


#: Kubernetes refuses Secrets whose data exceeds 1 MiB.
SECRET_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class Target:
    """Where the token Secret goes and who reads it."""

    namespace: str
    service_account: str | None = None
    #: The name of a pre-created Secret to fill, instead of creating one.
    fill: str | None = None
    #: Spark settings the layout adds (only ones the user did not set).
    conf: dict[str, str] = field(default_factory=dict)
    #: Put before the names of the Secrets the job creates: in a shared namespace the owner, ``<user>--``,
    #: so that admission can tell whose Secret a pod mounts (``spark-secrets rbac``'s pod policy).
    secret_prefix: str = ""


@dataclass(frozen=True)
class SecretPlan:
    """A Secret to create. ``data`` is secret: ``repr`` shows only keys and sizes."""

    name: str
    namespace: str
    data: Mapping[str, bytes] = field(repr=False)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    #: Fill this pre-created Secret (a merge patch) instead of creating it.
    fill: bool = False
    #: The label selector that finds the job's driver pod, which will own this Secret.
    driver_selector: str | None = None

    def __repr__(self) -> str:
        sizes = {k: f"{len(v)} bytes" for k, v in self.data.items()}
        return f"SecretPlan({self.namespace}/{self.name}, data={sizes}, labels={dict(self.labels)})"

    def fill_patch(self) -> dict[str, object]:
        """The merge patch that fills a pre-created Secret (its other labels, e.g. persistent, stay)."""
        manifest = self.manifest()
        # New tokens: the previous job's renewal record no longer applies to them.
        annotations: dict[str, str | None] = {ANNOTATION_RENEWED_AT: None, **self.annotations}
        return {"metadata": {"labels": dict(self.labels), "annotations": annotations},
                "data": manifest["data"]}

    def manifest(self) -> dict[str, object]:
        """The Secret object for the API server (the only place its bytes go)."""
        return {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "immutable": False,
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(self.labels),
                         "annotations": dict(self.annotations)},
            "data": {k: base64.b64encode(v).decode("ascii") for k, v in self.data.items()},
        }


@dataclass(frozen=True)
class SecretVolume:
    """A Secret the pods mount from a pod template the submission writes (for a mode and group Spark's own
    ``spark.kubernetes.*.secrets.*`` mounts cannot set); ``replaces`` are those conf keys, kept as the
    fallback where no template can be written."""

    secret: str
    mount_path: str
    replaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class FsGroup:
    """The pods' ``securityContext.fsGroup`` for those volumes; ``given``: the user set it (then it must
    agree with a pod template's own)."""

    gid: int
    given: bool = False


@dataclass(frozen=True)
class SubmissionSpec:
    """What a submission is: the user's Spark conf, and what the steps add to it.

    ``added_conf`` only ever holds references (Secret names, paths, labels), never secret bytes.
    """

    conf: Mapping[str, str]
    added_conf: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[SecretPlan, ...] = ()
    credentials: Credentials | None = field(default=None, repr=False)
    principal: str | None = None
    target: Target | None = None
    notes: tuple[str, ...] = ()
    #: The job's secrets for a driver that runs here (client mode): see submit_steps.local.
    local_secrets: LocalSecrets | None = field(default=None, repr=False)
    #: Secrets mounted through a pod template where one can be written (see submit_steps.podtemplate),
    #: with the group of their files; none with ``spark.secrets.dir.fsGroup=none``.
    volumes: tuple[SecretVolume, ...] = ()
    fs_group: FsGroup | None = None

    def effective_conf(self) -> dict[str, str]:
        return {**self.conf, **self.added_conf}

    def add_conf(self, entries: Mapping[str, str]) -> SubmissionSpec:
        return replace(self, added_conf={**self.added_conf, **entries})

    def add_secret(self, plan: SecretPlan) -> SubmissionSpec:
        return replace(self, secrets=(*self.secrets, plan))

    def with_local_secrets(self, local: LocalSecrets) -> SubmissionSpec:
        return replace(self, local_secrets=local)

    def add_volume(self, volume: SecretVolume, fs_group: FsGroup) -> SubmissionSpec:
        return replace(self, volumes=(*self.volumes, volume), fs_group=fs_group)

    def add_note(self, note: str) -> SubmissionSpec:
        return replace(self, notes=(*self.notes, note))

    def conf_flags(self) -> list[str]:
        """The ``--conf key=value`` flags to add to an unchanged ``spark-submit`` command."""
        out: list[str] = []
        for key, value in self.added_conf.items():
            out += ["--conf", f"{key}={value}"]
        return out
