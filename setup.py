"""Builds the wheel with the JVM refresher plugin jar inside (metadata lives in setup.cfg)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithPlugin(build_py):
    """``build_py``, then compile ``spark_secrets/jvm/src`` into ``spark_secrets/jvm/spark-secrets-plugin.jar``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # editable installs build the jar on first use (spark_secrets.plugin.jar.jar_path)
        spec = importlib.util.spec_from_file_location("_plugin_build", Path(__file__).parent / "spark_secrets" / "jvm" / "build.py")
        assert spec and spec.loader
        builder = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(builder)
        dest = Path(self.build_lib) / "spark_secrets" / "jvm" / builder.JAR_NAME
        try:
            builder.build_jar(dest)
        except builder.BuildError as exc:
            self.warn(f"plugin jar not packaged ({str(exc).splitlines()[0]}); `spark-secrets jar` builds it on first use")


setup(cmdclass={"build_py": BuildPyWithPlugin})
