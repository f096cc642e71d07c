"""Rendering for job templates: references only, merged into the job's own template."""

from __future__ import annotations

import pytest

from spark_secrets.errors import ConfigError
from submit_steps.settings import SPARK_CREDENTIALS_DIR

from steps_support import BASE, builder, plugin_conf


def test_render_formats_carry_references_only() -> None:
    import yaml

    from submit_steps.render import render, template_conf

    spec = builder(plugin_conf(**{"spark.secrets.plugin.jar": "/opt/p.jar"})).run()
    secret = spec.secrets[0].name
    props = render(spec, "properties")
    assert f"spark.kubernetes.kerberos.tokenSecret.name={secret}" in props
    operator = yaml.safe_load(render(spec, "spark-operator"))
    assert operator["kind"] == "SparkApplication" and operator["spec"]["sparkConf"] == dict(spec.added_conf)
    template = yaml.safe_load(render(spec, "pod-template"))
    assert template["spec"]["volumes"][0]["secret"]["secretName"] == secret
    assert not any(k.startswith("spark.kubernetes.kerberos.") for k in template_conf(spec))
    for text in (props, yaml.safe_dump(operator), yaml.safe_dump(template)):
        assert (b"p" * 20).hex() not in text and "pppp" not in text
    with pytest.raises(ConfigError, match="unknown format"):
        render(spec, "helm")


def test_a_pod_template_is_merged_into_the_jobs_own_template() -> None:
    import yaml

    from submit_steps.render import render

    spec = builder(dict(BASE)).run()
    secret = spec.secrets[0].name
    own = {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"team": "etl"}},
           "spec": {"hostNetwork": True, "volumes": [{"name": "krb5", "configMap": {"name": "krb5"}}],
                    "containers": [{"name": "main", "env": [{"name": "A", "value": "1"}],
                                    "volumeMounts": [{"name": "krb5", "mountPath": "/etc/krb5.conf"}]},
                                   {"name": "sidecar"}]}}
    merged = yaml.safe_load(render(spec, "pod-template", own))
    assert merged["spec"]["hostNetwork"] is True and merged["metadata"]["labels"]["team"] == "etl"
    assert [v["name"] for v in merged["spec"]["volumes"]] == ["krb5", "spark-secrets-hadoop-tokens"]
    assert merged["spec"]["volumes"][1]["secret"]["secretName"] == secret
    main, sidecar = merged["spec"]["containers"]
    assert [m["mountPath"] for m in main["volumeMounts"]] == ["/etc/krb5.conf", SPARK_CREDENTIALS_DIR]
    assert main["env"] == [{"name": "A", "value": "1"}, {"name": "HADOOP_TOKEN_FILE_LOCATION",
                                                         "value": f"{SPARK_CREDENTIALS_DIR}/hadoop-tokens"}]
    assert sidecar == {"name": "sidecar"}
    assert own["spec"]["volumes"] == [{"name": "krb5", "configMap": {"name": "krb5"}}]  # the input is untouched
    with pytest.raises(ConfigError, match="not a pod template"):
        render(spec, "pod-template", {"kind": "SparkApplication"})


def test_formats_whose_driver_always_runs_in_a_pod_fix_cluster_mode_in_the_context() -> None:
    from submit_steps.render import DEPLOY_MODES, FORMATS

    assert set(DEPLOY_MODES) == set(FORMATS)
    assert DEPLOY_MODES["spark-operator"] == DEPLOY_MODES["pod-template"] == "cluster"
    assert DEPLOY_MODES["properties"] is None  # the conf's: Spark's default, client, unless --deploy-mode cluster
