"""The job-secrets Secret's format, for its writer (the submission step) and its readers (the runtime API,
and the renew service when it rotates): values by key, references and versions in annotations.

* a file secret ``<name>`` is the key ``<name>``, so mounting the Secret at the job-secrets directory
  gives ``<dir>/<name>``;
* an env secret ``<VAR>`` is the key ``.env.<VAR>`` (hidden in the directory), given to containers by
  ``secretKeyRef``;
* ``references``: each secret's reference (``file.<name>`` / ``env.<VAR>`` -> ``vault:...``), never a value;
* ``vault-versions``: the KV version each ``vault:`` secret was read at, to notice a rotation by its metadata.

``k8s:`` references are not copied: their Secret is mounted at ``<dir>-k8s/<secret>`` and the files'
paths reach the runtime API through ``SPARK_SECRETS_FILES`` (``name=path,...``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

# The job's driver service account (the token Secret's annotation): who the renew service reads
# OpenBao/Vault as, for this job.
from spark_secrets.secrets.tokensecret import ANNOTATION_SERVICE_ACCOUNT as ANNOTATION_SERVICE_ACCOUNT
from spark_secrets.secrets.tokensecret import DOMAIN, LABEL_KIND, LABEL_MANAGED_BY, MANAGED_BY

KIND_JOB_SECRETS = "job-secrets"
#: On the driver pod: the name of the job-secrets Secret it owns once it exists.
LABEL_JOB_SECRETS = f"{DOMAIN}/job-secrets"
ANNOTATION_REFERENCES = f"{DOMAIN}/references"
ANNOTATION_VERSIONS = f"{DOMAIN}/vault-versions"
#: Leased credentials by location: ``{"id": lease ID, "ttl": the engine's lease duration (s), "until": epoch s
#: it ends unless renewed, "issued": epoch s}``. Lease IDs name leases; they grant nothing by themselves.
ANNOTATION_LEASES = f"{DOMAIN}/vault-leases"
#: The variables pods and local drivers read: the directory, and where ``k8s:`` files are.
ENV_DIR = "SPARK_SECRETS_DIR"
ENV_FILES = "SPARK_SECRETS_FILES"
ENV_KEY_PREFIX = ".env."
SUFFIX = "-job-secrets"
#: Selects every job-secrets Secret (the renew service lists their metadata only).
JOB_SECRETS_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_KIND}={KIND_JOB_SECRETS}"


def env_key(var: str) -> str:
    return f"{ENV_KEY_PREFIX}{var}"


def k8s_dir(secrets_dir: str, secret: str) -> str:
    """Where a ``k8s:`` reference's Secret is mounted: beside the directory, never inside its volume."""
    return f"{secrets_dir}-k8s/{secret}"


def data_key(kind: str, name: str) -> str:
    """The Secret key of a file (``<name>``) or env (``.env.<VAR>``) secret."""
    return name if kind == "file" else env_key(name)


def encode_files(paths: Mapping[str, str]) -> str:
    return ",".join(f"{name}={path}" for name, path in sorted(paths.items()))


def decode_files(text: str) -> dict[str, str]:
    pairs = (item.partition("=") for item in text.split(",") if "=" in item)
    return {name: path for name, _, path in pairs}


def references_annotation(refs: Mapping[str, object]) -> str:
    return json.dumps(dict(sorted(refs.items())), separators=(",", ":"))


def lease_record(lease_id: str, ttl: int, until: float, issued: float) -> dict[str, object]:
    return {"id": lease_id, "ttl": ttl, "until": int(until), "issued": int(issued)}
