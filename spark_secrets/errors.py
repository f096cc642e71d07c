"""One exception hierarchy for the whole project, rooted in :class:`SparkSecretsError`.

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


class KerberosError(SparkSecretsError):
    """The Kerberos ticket cache or keytab cannot give the credentials needed."""


class HdfsError(SparkSecretsError):
    """The NameNode refused or failed a request."""


class KubernetesError(SparkSecretsError):
    """The Kubernetes API server refused or failed a request."""


class TestbedError(SparkSecretsError):
    """A component of the local test bed is missing, failed to start or is unhealthy."""

    __test__ = False  # not a pytest test class despite the name


class NameNodeUnavailable(HdfsError):
    """No NameNode answered (connection refused, timeout, or only standby NameNodes)."""


class HdfsAuthenticationError(HdfsError):
    """The NameNode did not accept the caller's Kerberos (SPNEGO) or token authentication."""


class HdfsPermissionError(HdfsError):
    """The NameNode refused the operation for this caller (renewer mismatch, proxy user, ACLs)."""


class InvalidTokenError(HdfsError):
    """The NameNode does not know this token (cancelled, wrong password or unknown master key)."""


class TokenExpiredError(InvalidTokenError):
    """The token's expiry or maximum lifetime has passed."""
