"""Filesystem URIs to NameNode addresses and token services, from a Hadoop client configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_secrets.errors import ConfigError
from spark_secrets.hadoop.conf import HadoopConf, resolve_filesystem

HA = HadoopConf({
    "fs.defaultFS": "hdfs://prod",
    "dfs.nameservices": "prod,solo",
    "dfs.ha.namenodes.prod": "a, b",
    "dfs.namenode.rpc-address.prod.a": "nn-a.example:8020",
    "dfs.namenode.rpc-address.prod.b": "nn-b.example:8020",
    "dfs.namenode.http-address.prod.a": "nn-a.example:9870",
    "dfs.namenode.http-address.prod.b": "0.0.0.0:9870",
    "dfs.namenode.https-address.prod.a": "nn-a.example:9871",
    "dfs.namenode.rpc-address.solo": "127.0.0.1:8021",
    "dfs.namenode.http-address.solo": "127.0.0.1:9880",
    "dfs.namenode.rpc-address": "127.0.0.1:8020",
    "dfs.namenode.http-address": "127.0.0.1:50070",
})


def test_ha_nameservice_lists_every_namenode_in_order() -> None:
    t = resolve_filesystem("hdfs://prod", HA)
    assert [n.http_url for n in t.namenodes] == ["http://nn-a.example:9870", "http://nn-b.example:9870"]
    assert t.nameservice == "prod" and t.hdfs_service("10.1.1.1:8020") == "ha-hdfs:prod"
    assert t.web_service(t.namenodes[0]) == "ha-webhdfs:prod"


def test_swebhdfs_nameservice_uses_https_addresses() -> None:
    t = resolve_filesystem("swebhdfs://prod", HA)
    assert [n.http_url for n in t.namenodes] == ["https://nn-a.example:9871", "https://nn-b.example:9871"]
    assert t.web_service(t.namenodes[0]) == "ha-swebhdfs:prod"


def test_https_only_policy_makes_hdfs_fetch_over_https() -> None:
    conf = HadoopConf({**HA, "dfs.http.policy": "HTTPS_ONLY"})
    assert resolve_filesystem("hdfs://prod", conf).https


def test_plain_namenode_uses_configured_http_address_and_rpc_ip_service() -> None:
    t = resolve_filesystem("hdfs://localhost:8020", HA)
    assert [n.http_url for n in t.namenodes] == ["http://127.0.0.1:50070"]
    assert t.nameservice is None and t.hdfs_service("ignored:1") == "127.0.0.1:8020"
    assert t.web_service(t.namenodes[0]) == "127.0.0.1:50070"


def test_unconfigured_namenode_falls_back_to_the_default_http_port() -> None:
    t = resolve_filesystem("hdfs://localhost:9000", HadoopConf({}))
    assert [n.http_url for n in t.namenodes] == ["http://localhost:9870"]
    assert t.hdfs_service("x") == "127.0.0.1:9000"


def test_federated_non_ha_nameservice() -> None:
    t = resolve_filesystem("hdfs://solo", HA)
    assert [n.http_url for n in t.namenodes] == ["http://127.0.0.1:9880"]
    assert t.nameservice is None and t.hdfs_service("x") == "127.0.0.1:8021"


def test_webhdfs_url_keeps_the_namenode_service() -> None:
    t = resolve_filesystem("http://localhost:9870/", HA)
    assert t.hdfs_service("10.0.0.9:8020") == "10.0.0.9:8020" and t.web_service(t.namenodes[0]) == "127.0.0.1:9870"


@pytest.mark.parametrize("uri", ["s3a://bucket", "hdfs://", "file:///tmp", "nonsense"])
def test_unsupported_uris_are_refused(uri: str) -> None:
    with pytest.raises(ConfigError, match="not a filesystem Hadoop can issue tokens for"):
        resolve_filesystem(uri, HA)


def test_nameservice_without_addresses_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no address for NameNode"):
        resolve_filesystem("hdfs://broken", HadoopConf({"dfs.nameservices": "broken", "dfs.ha.namenodes.broken": "x"}))


def test_load_reads_site_files_and_reports_bad_xml(tmp_path: Path) -> None:
    (tmp_path / "core-site.xml").write_text(
        "<configuration><property><name>fs.defaultFS</name><value> hdfs://prod </value></property></configuration>")
    assert HadoopConf.load(tmp_path).default_fs == "hdfs://prod"
    (tmp_path / "hdfs-site.xml").write_text("<configuration><property>")
    with pytest.raises(ConfigError, match="cannot read Hadoop configuration"):
        HadoopConf.load(tmp_path)
