"""spark-submit command lines and properties files, read as Spark reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_secrets.errors import ConfigError
from submit_steps.sparkconf import conf_from_submit_args, insert_conf_flags, read_properties


# -- spark-submit command lines ------------------------------------------------------------------
def test_conf_from_submit_args_and_defaults_file(tmp_path: Path) -> None:
    (tmp_path / "spark-defaults.conf").write_text("spark.secrets.renewer  svc\nspark.app.name=fromfile\n")
    args = ["--master", "k8s://https://api:6443", "--deploy-mode", "cluster", "--name", "etl", "--class", "a.B",
            "--conf", "spark.kubernetes.namespace=alice", "--conf=spark.x=1=2", "-c", "spark.y=", "--verbose",
            "local:///app.jar", "--conf", "app.arg=ignored"]
    conf = conf_from_submit_args(args, {"SPARK_CONF_DIR": str(tmp_path)})
    assert conf == {"spark.secrets.renewer": "svc", "spark.app.name": "etl", "spark.master": "k8s://https://api:6443",
                    "spark.submit.deployMode": "cluster", "spark.kubernetes.namespace": "alice", "spark.x": "1=2",
                    "spark.y": ""}
    flags = ["--conf", "k=v"]
    placed = insert_conf_flags(args, flags)
    assert placed[placed.index("local:///app.jar") - 2:placed.index("local:///app.jar")] == flags
    assert placed[-2:] == ["--conf", "app.arg=ignored"]


def test_properties_file_replaces_defaults(tmp_path: Path) -> None:
    (tmp_path / "spark-defaults.conf").write_text("spark.a 1\n")
    props = tmp_path / "job.properties"
    props.write_text("# comment\nspark.b : 2\n")
    assert read_properties(props) == {"spark.b": "2"}
    conf = conf_from_submit_args(["--properties-file", str(props), "app.py"], {"SPARK_CONF_DIR": str(tmp_path)})
    assert conf == {"spark.b": "2"}
    with pytest.raises(ConfigError, match="not key=value"):
        conf_from_submit_args(["--conf", "novalue", "app.py"], {})
