"""The notebook's gRPC channel to its user's own Spark Connect server, with the server's bearer token.

pyspark's ``DefaultChannelBuilder`` sends a token only over TLS, or over local credentials to the literal
host ``localhost``, and Spark 4.3's Connect server speaks no TLS; a ``;token=`` in the ``sc://`` URL would
also put the token wherever the URL is printed. This builder keeps the token out of the URL and sends it as
the ``authorization: Bearer`` metadata that Spark's ``PreSharedKeyAuthenticationInterceptor`` checks, on every
call (pyspark passes :meth:`metadata` to each RPC and to its artifact uploads)."""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql.connect.client import DefaultChannelBuilder


class BearerChannelBuilder(DefaultChannelBuilder):
    """An insecure channel to ``url`` (``sc://host:port``, no token in it) that authenticates with ``token``."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(url)
        if self.getDefault(self.PARAM_TOKEN, None) is not None:
            raise ValueError("the Connect URL must not hold a token: it is sent as metadata")
        self.__bearer = token

    @property
    def token(self) -> str | None:
        """None to pyspark, so that it neither asks for TLS nor reads ``SPARK_CONNECT_AUTHENTICATE_TOKEN``."""
        return None

    def metadata(self) -> Iterable[tuple[str, str]]:
        return [*super().metadata(), ("authorization", f"Bearer {self.__bearer}")]

    def __repr__(self) -> str:
        return f"BearerChannelBuilder({self.endpoint!r})"
