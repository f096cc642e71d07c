"""The JVM refresher plugin: where its jar is, and building it when the install carries none.

A wheel carries the jar (built by ``setup.py`` from ``jvm/src``). A source checkout or editable
install builds it on first use into ``$SPARK_SECRETS_CACHE/plugin/<source hash>/``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from spark_secrets.errors import PluginError

PLUGIN_CLASS = "io.sparksecrets.plugin.TokenRefreshPlugin"


def packaged_jar() -> Path | None:
    from spark_secrets.jvm import build  # the builder only when the jar is looked for

    jar = Path(build.__file__).parent / build.JAR_NAME
    return jar if jar.is_file() else None


def _source_hash() -> str:
    from spark_secrets.jvm import build

    digest = hashlib.sha256()
    for path in build.sources():
        digest.update(path.relative_to(build.SOURCES).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def jar_path(*, build_if_missing: bool = True) -> Path:
    """The plugin jar: the packaged one, else one built from the installed sources (cached)."""
    from spark_secrets.jvm import build

    packaged = packaged_jar()
    if packaged is not None:
        return packaged
    cache = Path(os.environ.get("SPARK_SECRETS_CACHE") or Path.home() / ".cache" / "spark-secrets")
    jar = cache / "plugin" / _source_hash() / build.JAR_NAME
    if jar.is_file():
        return jar
    if not build_if_missing:
        raise PluginError("the plugin jar is not built yet", "run `spark-secrets jar` once")
    try:
        return build.build_jar(jar)
    except build.BuildError as exc:
        first = str(exc).splitlines()[0]
        raise PluginError(f"cannot build the plugin jar: {first}",
                          "install a JDK and pyspark, or install spark-secrets from a wheel") from None
