"""Step 4: enable the JVM refresher plugin in driver and executors, when its jar can be found there.

The plugin goes on the JVM class path (``spark.{driver,executor}.extraClassPath``) rather than
``spark.jars``, because a ``--jars`` flag on the command line would replace ``spark.jars`` and drop
it. In cluster mode the jar must be in the images (``spark.secrets.plugin.jar``); a driver running
here (client mode, notebooks, ``local`` masters) uses the installed jar. Which mode it is comes from the
job's context: Spark's default, client, when the conf does not say (``conf`` and ``render --format
properties`` for a cluster-mode job need ``--deploy-mode cluster`` too).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from spark_secrets.plugin.jar import PLUGIN_CLASS, jar_path
from submit_steps.context import JobContext
from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec
from submit_steps.step import SubmitStep


def _joined(existing: str | None, value: str, sep: str) -> str:
    parts = [p for p in (existing or "").split(sep) if p.strip()]
    return sep.join(parts if value in parts else [*parts, value])


class RefresherPluginStep(SubmitStep):
    """Adds ``spark.plugins`` and the class path entries for the token refresher."""

    def __init__(self, context: JobContext | Settings, *, local_jar: Callable[[], Path] | None = None) -> None:
        super().__init__(context)
        self._local_jar = local_jar or jar_path

    @property
    def enabled(self) -> bool:
        return self.settings.wants_tokens and self.settings.plugin_jar != "none"

    @property
    def disabled_note(self) -> str | None:
        if self.settings.wants_tokens and self.settings.plugin_jar == "none":
            return "spark.secrets.plugin.jar=none: no token refresher in the JVMs"
        return None

    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        if not self.enabled:
            return spec.add_note(self.disabled_note) if self.disabled_note else spec
        conf = spec.effective_conf()
        master = conf.get("spark.master", "")
        in_image = self.settings.plugin_jar
        driver_jar: str | None
        executor_jar: str | None
        if master.startswith("local"):  # driver and executors are JVMs on this machine
            driver_jar = executor_jar = str(self._local_jar())
        elif self.context.cluster_mode:  # a driver pod: the images' jar
            driver_jar = executor_jar = in_image
        else:
            executor_jar = in_image
            driver_jar = str(self._local_jar()) if in_image else None
        if driver_jar is None or executor_jar is None:
            return spec.add_note("token refresher plugin not enabled: set spark.secrets.plugin.jar to the jar's path "
                                 "in your image (`spark-secrets jar` prints the installed one) so that jobs outlive "
                                 "their first tokens")
        added = {
            "spark.plugins": _joined(conf.get("spark.plugins"), PLUGIN_CLASS, ","),
            "spark.driver.extraClassPath": _joined(conf.get("spark.driver.extraClassPath"), driver_jar, ":"),
            "spark.executor.extraClassPath": _joined(conf.get("spark.executor.extraClassPath"), executor_jar, ":"),
        }
        return spec.add_conf(added).add_note(f"token refresher plugin enabled (driver {driver_jar}, executors "
                                             f"{executor_jar})")
