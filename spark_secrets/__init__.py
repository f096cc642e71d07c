"""spark-secrets: Kerberized HDFS delegation tokens for Apache Spark on Kubernetes, without keytabs in jobs."""

__version__ = "0.1.0.dev0"
