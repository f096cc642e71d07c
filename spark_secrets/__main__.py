"""``python -m spark_secrets`` is the ``spark-secrets`` command."""

from spark_secrets.cli.main import run

run()
