"""``python -m spark_secrets`` is the ``spark-secrets`` command."""

import sys

from spark_secrets.cli.main import main

sys.exit(main())
