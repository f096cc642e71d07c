"""The refresher plugin step: which jar goes on which class path for each master and deploy mode."""

from __future__ import annotations

from submit_steps.sparkconf import conf_from_submit_args

from steps_support import BASE, builder, plugin_conf


# -- the refresher plugin step -------------------------------------------------------------------
PLUGIN = "io.sparksecrets.plugin.TokenRefreshPlugin"


def test_cluster_mode_without_an_image_path_leaves_the_plugin_out_and_says_so() -> None:
    spec = builder(plugin_conf(**{"spark.submit.deployMode": "cluster"})).run()
    assert "spark.plugins" not in spec.added_conf
    assert any("set spark.secrets.plugin.jar" in note for note in spec.notes)


def test_cluster_mode_puts_the_image_jar_on_both_class_paths_beside_the_users_plugins() -> None:
    spec = builder(plugin_conf(**{"spark.submit.deployMode": "cluster", "spark.plugins": "com.example.Metrics",
                                    "spark.executor.extraClassPath": "/opt/extra.jar",
                                    "spark.secrets.plugin.jar": "local:///opt/spark-secrets/plugin.jar"})).run()
    assert spec.added_conf["spark.plugins"] == f"com.example.Metrics,{PLUGIN}"
    assert spec.added_conf["spark.driver.extraClassPath"] == "/opt/spark-secrets/plugin.jar"
    assert spec.added_conf["spark.executor.extraClassPath"] == "/opt/extra.jar:/opt/spark-secrets/plugin.jar"


def test_client_mode_driver_uses_the_installed_jar_and_executors_the_images() -> None:
    spec = builder(plugin_conf(**{"spark.secrets.plugin.jar": "/opt/spark-secrets/plugin.jar",
                                    "spark.submit.deployMode": "client"})).run()
    assert spec.added_conf["spark.driver.extraClassPath"] == "/site/plugin.jar"
    assert spec.added_conf["spark.executor.extraClassPath"] == "/opt/spark-secrets/plugin.jar"


def test_client_mode_on_kubernetes_without_an_image_path_leaves_the_plugin_out() -> None:
    assert "spark.plugins" not in builder(plugin_conf()).run().added_conf


def test_local_master_uses_the_installed_jar_everywhere() -> None:
    spec = builder({**BASE, "spark.master": "local-cluster[1,1,1024]"}).run()
    assert spec.added_conf["spark.plugins"] == PLUGIN
    assert spec.added_conf["spark.executor.extraClassPath"] == "/site/plugin.jar"


def test_plugin_jar_none_disables_it() -> None:
    spec = builder({**BASE, "spark.master": "local[2]", "spark.secrets.plugin.jar": "none"}).run()
    assert "spark.plugins" not in spec.added_conf and any("plugin.jar=none" in n for n in spec.notes)


def test_unknown_deploy_mode_with_an_image_path_uses_it_everywhere() -> None:
    """A cluster-mode job's `spark-secrets conf` is given its --deploy-mode cluster (unset is Spark's default,
    client, in every step: see test_step_contract_unit); the image path then serves the driver pod too."""
    conf = conf_from_submit_args(["--deploy-mode", "cluster", *(f for k, v in plugin_conf(**{
        "spark.secrets.plugin.jar": "/opt/p.jar"}).items() for f in ("--conf", f"{k}={v}"))], {})
    spec = builder(conf).run()
    assert spec.added_conf["spark.driver.extraClassPath"] == spec.added_conf["spark.executor.extraClassPath"] == "/opt/p.jar"
