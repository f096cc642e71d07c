"""The ``spark-secrets`` command line."""
