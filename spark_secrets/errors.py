"""One exception hierarchy for the whole project, rooted in :class:`SparkSecretsError`::

    SparkSecretsError
    ├── ConfigError               a setting is missing, malformed or inconsistent
    ├── TokenFormatError          bytes that should be a token, identifier or token file
    ├── MissingTokenError         a token file holds no token for the filesystem asked for
    ├── KerberosError             no ticket, expired ticket, unusable keytab
    ├── HdfsError                 a Hadoop server (NameNode, KMS) refused or failed
    │   ├── ServerUnavailable     it did not answer (the next of a set may)
    │   │   └── NameNodeUnavailable
    │   ├── HdfsAuthenticationError
    │   ├── HdfsPermissionError
    │   ├── InvalidTokenError
    │   │   └── TokenExpiredError
    │   └── KafkaError            a Kafka broker refused or failed a delegation-token request; its
    │       │                     subclasses are also the matching ones above, so that a service that
    │       │                     reacts to those (re-issue, retry) treats Kafka tokens alike
    │       ├── KafkaUnavailable          (also ServerUnavailable)
    │       ├── KafkaAuthorizationError   (also HdfsPermissionError)
    │       └── KafkaTokenNotFound        (also InvalidTokenError)
    │           └── KafkaTokenExpired     (also TokenExpiredError)
    ├── KubernetesError           the API server refused or failed
    │   ├── KubernetesForbidden   (403)
    │   ├── KubernetesNotFound    (404)
    │   ├── KubernetesConflict    (409)
    │   └── KubernetesGone        (410)
    ├── VaultError                OpenBao/Vault refused or failed
    │   ├── VaultForbidden        a policy denies it, or the token expired
    │   ├── VaultNotFound         no secret at that path
    │   └── VaultUnavailable      it did not answer
    ├── UnusableSecret            a token Secret the renew service cannot work with
    │   └── TokenRefused          ... and must not: its owner is not bound, or its tokens not genuine
    ├── PluginError               the JVM plugin's jar
    └── TestbedError              the local test bed (development only)

Every error names the problem and, where there is one, the fix, so that the CLI can print
``str(error)`` as a single line. No error message ever carries secret bytes.
"""

from __future__ import annotations


class SparkSecretsError(Exception):
    """Root of every error this project raises on purpose."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem}: {fix}")


class ConfigError(SparkSecretsError):
    """A setting is missing, malformed or inconsistent."""


class TokenFormatError(SparkSecretsError):
    """Bytes that should be a Hadoop token, identifier or token file are not."""


class MissingTokenError(SparkSecretsError):
    """A token file holds no delegation token for the filesystem a job's code asked for."""


class KerberosError(SparkSecretsError):
    """The Kerberos ticket cache or keytab cannot give the credentials needed."""


class HdfsError(SparkSecretsError):
    """A Hadoop server (a NameNode, a KMS) refused or failed a request."""


class KubernetesError(SparkSecretsError):
    """The Kubernetes API server refused or failed a request."""


class KubernetesForbidden(KubernetesError):
    """RBAC denied the request (HTTP 403)."""


class KubernetesNotFound(KubernetesError):
    """The object does not exist (HTTP 404)."""


class KubernetesConflict(KubernetesError):
    """The object exists already, or changed since it was read (HTTP 409)."""


class KubernetesGone(KubernetesError):
    """A watch or list asked for a resourceVersion the server no longer has (HTTP 410): list again."""


class KubernetesInvalid(KubernetesError):
    """The API server found the request invalid (HTTP 422), e.g. a streaming list where it has none."""


class VaultError(SparkSecretsError):
    """OpenBao/Vault refused or failed a request."""


class VaultForbidden(VaultError):
    """A policy denies the request, or the token is expired or revoked (HTTP 403)."""


class VaultNotFound(VaultError):
    """No secret at that path, or not that version (HTTP 404)."""


class VaultUnavailable(VaultError):
    """OpenBao/Vault did not answer (connection refused, timeout, sealed, TLS)."""


class UnusableSecret(SparkSecretsError):
    """A token Secret the renew service cannot work with (no key, unparsable file, no tokens)."""


class TokenRefused(UnusableSecret):
    """A token Secret the renew service will not act on: its tokens' owner differs from the owner the API
    server bound to the Secret's creator, no admission policy binds it, or the tokens are not genuine."""


class PluginError(SparkSecretsError):
    """The JVM plugin's jar is missing or cannot be built."""


class TestbedError(SparkSecretsError):
    """A component of the local test bed is missing, failed to start or is unhealthy."""

    __test__ = False  # not a pytest test class despite the name


class ServerUnavailable(HdfsError):
    """A Hadoop server did not answer (connection refused, timeout): the next one of a set may."""


class NameNodeUnavailable(ServerUnavailable):
    """No NameNode answered (connection refused, timeout, or only standby NameNodes)."""


class HdfsAuthenticationError(HdfsError):
    """The NameNode did not accept the caller's Kerberos (SPNEGO) or token authentication."""


class HdfsPermissionError(HdfsError):
    """The NameNode refused the operation for this caller (renewer mismatch, proxy user, ACLs)."""


class InvalidTokenError(HdfsError):
    """The NameNode does not know this token (cancelled, wrong password or unknown master key)."""


class TokenExpiredError(InvalidTokenError):
    """The token's expiry or maximum lifetime has passed."""


class KafkaError(HdfsError):
    """A Kafka broker refused or failed a delegation-token request (or tokens are disabled on it)."""


class KafkaUnavailable(KafkaError, ServerUnavailable):
    """No broker of a cluster answered (connection refused, timeout, TLS handshake)."""


class KafkaAuthorizationError(KafkaError, HdfsPermissionError):
    """The broker's ACLs deny the caller (``CreateTokens`` for another owner, not a renewer of the token)."""


class KafkaTokenNotFound(KafkaError, InvalidTokenError):
    """The brokers do not know this token (expired and removed, or cancelled)."""


class KafkaTokenExpired(KafkaTokenNotFound, TokenExpiredError):
    """The token's expiry or maximum lifetime has passed."""
