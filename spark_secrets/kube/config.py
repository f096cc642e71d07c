"""Where the Kubernetes API server is and how to authenticate to it: kubeconfig files and the pod's
service account, read without the ``kubernetes`` package.

Importing that package's configuration loader alone takes about a third of a second (it imports
the whole package: API classes, models, OAuth and Google libraries), which is most of what a
``spark-secrets conf`` added to a ``spark-submit``. What users' kubeconfigs hold is read here: the
bearer ``token`` or ``tokenFile``, client certificate and key (``client-certificate``/``-data``,
``client-key``/``-data``), the CA (``certificate-authority``/``-data``), ``insecure-skip-tls-verify``,
``tls-server-name``, ``proxy-url``, user name and password, and the context's namespace.
Credentials that need code to obtain (``exec`` plugins, the ``gcp`` and ``oidc`` auth providers)
are delegated to the ``kubernetes`` package's own loader, imported only then.

The rules are that loader's: ``KUBECONFIG`` (or the file given) may name several files separated
by ``:``; missing ones are skipped; clusters, users and contexts merge by name (the first file to
name one wins) and the last file that sets ``current-context`` wins; ``-data`` entries win over
file paths, which are relative to the kubeconfig; a user's auth-provider comes before a token,
then an exec plugin, then a user name and password; client certificates and the CA apply to
``https`` servers only.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_KUBECONFIG = "~/.kube/config"
SERVICE_HOST_ENV = "KUBERNETES_SERVICE_HOST"
SERVICE_PORT_ENV = "KUBERNETES_SERVICE_PORT"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: The service account token is re-read this often (kubelet rotates projected tokens).
TOKEN_REREAD_SECONDS = 60.0


class KubeconfigError(ValueError):
    """No usable configuration (the message says why; it never holds a credential)."""


@dataclass
class ClusterAccess:
    """One API server and the credentials to present to it."""

    server: str
    #: For ``requests``' ``verify=``: a CA file, True (the system's CAs) or False (no verification).
    verify: bool | str = True
    #: Client certificate and key files, or None.
    cert: tuple[str, str] | None = None
    tls_server_name: str | None = None
    proxy: str | None = None
    namespace: str | None = None
    #: How the ``kubernetes`` package would load the same configuration (for its API classes).
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    _authorization: Callable[[], str | None] = field(default=lambda: None, repr=False)

    def authorization(self) -> str | None:
        """The ``Authorization`` header value for the next request (refreshed when it expires)."""
        return self._authorization()


# -- kubeconfig files ---------------------------------------------------------------------------------
def _parse(text: str, path: str) -> Any:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            return json.loads(text)  # JSON is YAML; the JSON parser needs no import
        except ValueError:
            pass
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"{path} is not YAML ({type(exc).__name__})") from None


@dataclass
class _Entry:
    """A named cluster, user or context, with the directory its relative paths start from."""

    value: Mapping[str, Any]
    base: str


def _merged(paths: str) -> tuple[dict[str, dict[str, _Entry]], str | None]:
    found: dict[str, dict[str, _Entry]] = {"clusters": {}, "users": {}, "contexts": {}}
    current: str | None = None
    read_any = False
    for path in paths.split(":"):
        if not path:
            continue
        path = os.path.expanduser(path)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            config = _parse(f.read(), path)
        if config is None:
            raise KubeconfigError(f"kubeconfig {path} is empty")
        if not isinstance(config, dict):
            raise KubeconfigError(f"kubeconfig {path} is not a mapping")
        read_any = True
        base = os.path.abspath(os.path.dirname(path))
        for kind in found:
            for item in config.get(kind) or []:
                if not isinstance(item, dict) or "name" not in item:
                    raise KubeconfigError(f"every entry of {kind} in {path} needs a name")
                found[kind].setdefault(item["name"], _Entry(item.get(kind[:-1]) or {}, base))
        if "current-context" in config:
            current = config["current-context"]
    if not read_any:
        raise KubeconfigError(f"no kubeconfig file found at {paths}")
    return found, current


def _file_or_data(entry: Mapping[str, Any], key: str, base: str) -> str | None:
    """The path of ``key``'s file, or of a private file holding ``key-data`` (base64)."""
    data_key = f"{key}-data"
    if data_key in entry:
        data = entry[data_key]
        return _private_file(base64.standard_b64decode(data)) if data else None
    if key in entry:
        path = os.path.normpath(os.path.join(base, entry[key]))
        if not os.path.isfile(path):
            raise KubeconfigError(f"{key} file {path} does not exist")
        return path
    return None


_temp_lock = threading.Lock()
_temp_files: dict[bytes, str] = {}


def _private_file(content: bytes) -> str:
    """``content`` (a certificate or key given as ``-data``) in a 0600 file of a private directory
    that is removed when this process exits; the same content gives the same file."""
    import atexit
    import shutil
    import tempfile

    with _temp_lock:
        if content not in _temp_files:
            if not _temp_files:
                directory = tempfile.mkdtemp(prefix="spark-secrets-kube-")  # mode 0700
                atexit.register(shutil.rmtree, directory, True)
                _temp_files[b""] = directory
            fd, path = tempfile.mkstemp(dir=_temp_files[b""])  # mode 0600
            with os.fdopen(fd, "wb") as f:
                f.write(content)
            _temp_files[content] = path
        return _temp_files[content]


def load_kubeconfig(kubeconfig: str | None = None, context: str | None = None) -> ClusterAccess:
    """The server and credentials of ``context`` (default: the current one) in ``kubeconfig``
    (default: ``KUBECONFIG``, else ``~/.kube/config``). Raises KubeconfigError."""
    paths = kubeconfig if kubeconfig is not None else os.environ.get("KUBECONFIG", DEFAULT_KUBECONFIG)
    found, current = _merged(paths)
    name = context if context is not None else current
    if not name:
        raise KubeconfigError(f"no current-context in {paths}")
    ctx = found["contexts"].get(name)
    if ctx is None:
        raise KubeconfigError(f"no context {name!r} in {paths}")
    cluster_name = ctx.value.get("cluster")
    cluster = found["clusters"].get(cluster_name) if cluster_name else None
    if cluster is None:
        raise KubeconfigError(f"context {name!r} names no cluster defined in {paths}")
    user_name = ctx.value.get("user")
    user = found["users"].get(user_name) if user_name else None

    server = str(cluster.value.get("server") or "http://localhost").rstrip("/")
    access = ClusterAccess(server=server, namespace=ctx.value.get("namespace"), kubeconfig=kubeconfig,
                           context=context)
    values = user.value if user is not None else {}
    # The loader's order: a gcp/oidc auth provider, a token, an exec plugin, a user name and password.
    provider = values.get("auth-provider")
    by_provider = isinstance(provider, dict) and provider.get("name") in ("gcp", "oidc")
    token = None if by_provider else _token(values, user.base if user is not None else "")
    if by_provider or (token is None and "exec" in values):
        _delegate(access)
    else:
        header = token or _basic(values)
        access._authorization = lambda: header
    if server.startswith("https"):
        # Relative to the cluster's file, as the kubernetes package resolves them.
        access.verify = _file_or_data(cluster.value, "certificate-authority", cluster.base) or True
        if user is not None and access.cert is None:
            cert = _file_or_data(values, "client-certificate", cluster.base)
            key = _file_or_data(values, "client-key", cluster.base)
            access.cert = (cert, key) if cert and key else None
    if "insecure-skip-tls-verify" in cluster.value:
        if cluster.value["insecure-skip-tls-verify"]:
            access.verify = False
    access.tls_server_name = cluster.value.get("tls-server-name")
    access.proxy = cluster.value.get("proxy-url")
    return access


def _token(user: Mapping[str, Any], base: str) -> str | None:
    if "token" in user:
        token = user["token"]
    elif "tokenFile" in user:
        path = os.path.normpath(os.path.join(base, user["tokenFile"]))
        try:
            with open(path, encoding="utf-8") as f:
                token = f.read()
        except OSError as exc:
            raise KubeconfigError(f"cannot read tokenFile {path} ({exc.strerror})") from None
    else:
        return None
    token = str(token or "").strip()
    return f"Bearer {token}" if token else None


def _basic(user: Mapping[str, Any]) -> str | None:
    if "username" in user and "password" in user:
        pair = f"{user['username']}:{user['password']}".encode("latin-1")
        return "Basic " + base64.b64encode(pair).decode("ascii")
    return None


def _delegate(access: ClusterAccess) -> None:
    """Credentials from the ``kubernetes`` package's loader (exec plugins, auth providers): its
    refresh hook runs before each request, as in its own client."""
    from spark_secrets.kube._extra import load

    what = "a kubeconfig user with an exec plugin or auth provider"
    k8s, k8s_config = load("kubernetes.client", what), load("kubernetes.config", what)

    configuration = k8s.Configuration()
    try:
        k8s_config.load_kube_config(config_file=access.kubeconfig, context=access.context,
                                    client_configuration=configuration)
    except k8s_config.ConfigException as exc:
        raise KubeconfigError(str(exc)) from None
    if configuration.cert_file and configuration.key_file:
        access.cert = (configuration.cert_file, configuration.key_file)

    def authorization() -> str | None:
        settings: dict[str, Any] = dict(configuration.auth_settings())
        for setting in settings.values():
            if setting.get("in") == "header" and str(setting.get("key", "")).lower() == "authorization":
                return str(setting.get("value") or "") or None
        return None

    access._authorization = authorization


# -- in a pod -------------------------------------------------------------------------------------------
def load_in_cluster(environ: Mapping[str, str] | None = None, account_dir: str = SERVICE_ACCOUNT_DIR) -> ClusterAccess:
    """The pod's service account: ``KUBERNETES_SERVICE_HOST``/``PORT``, its token (re-read every
    minute, as kubelet rotates it) and CA. Raises KubeconfigError."""
    env = os.environ if environ is None else environ
    host, port = env.get(SERVICE_HOST_ENV), env.get(SERVICE_PORT_ENV)
    if not host or not port:
        raise KubeconfigError("not in a pod (KUBERNETES_SERVICE_HOST/PORT not set)")
    token_file, ca_file = f"{account_dir}/token", f"{account_dir}/ca.crt"
    if not os.path.isfile(token_file):
        raise KubeconfigError(f"no service account token at {token_file}")
    if not os.path.isfile(ca_file) or os.path.getsize(ca_file) == 0:
        raise KubeconfigError(f"no service account CA at {ca_file}")
    server = f"https://[{host}]:{port}" if ":" in host or "%" in host else f"https://{host}:{port}"
    state: dict[str, Any] = {"header": None, "until": 0.0}
    lock = threading.Lock()

    def authorization() -> str | None:
        with lock:
            if time.monotonic() >= state["until"]:
                with open(token_file, encoding="utf-8") as f:
                    token = f.read().strip()
                if not token:
                    raise KubeconfigError(f"the service account token {token_file} is empty")
                state["header"], state["until"] = f"Bearer {token}", time.monotonic() + TOKEN_REREAD_SECONDS
            return state["header"]

    authorization()
    return ClusterAccess(server=server, verify=ca_file, in_cluster=True, _authorization=authorization)
