"""The notebook's bearer channel (spark_secrets.connect.channel): the token goes as call metadata, never in
the URL or the builder's repr, and an ambient SPARK_CONNECT_AUTHENTICATE_TOKEN does not replace it."""

from __future__ import annotations

import pytest

pytest.importorskip("grpc", reason="the Connect client's packages (the connect extra)")

from spark_secrets.connect.channel import BearerChannelBuilder  # noqa: E402

TOKEN = "bearer-6f1d2c"


def test_the_token_is_metadata_of_every_call_and_the_channel_needs_no_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARK_CONNECT_AUTHENTICATE_TOKEN", "ambient-token")
    builder = BearerChannelBuilder("sc://10.244.0.1:15002/;user_id=alice", TOKEN)
    assert ("authorization", f"Bearer {TOKEN}") in list(builder.metadata())
    assert all("ambient-token" not in value for _, value in builder.metadata())
    assert builder.token is None and not builder.secure  # pyspark would otherwise ask for TLS
    assert builder.endpoint == "10.244.0.1:15002" and builder.userId == "alice"
    assert TOKEN not in repr(builder) and TOKEN not in str(vars(builder).get("url"))


def test_a_url_with_a_token_is_refused() -> None:
    with pytest.raises(ValueError, match="must not hold a token"):
        BearerChannelBuilder(f"sc://host:15002/;token={TOKEN}", TOKEN)
