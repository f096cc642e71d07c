"""``spark-secrets doctor``: before submitting, every check a job's HDFS access depends on, as lines a
person reads (✔, !, ✗ with the fix) or JSON a machine parses."""

from spark_secrets.check.examination import examine
from spark_secrets.check.report import FAIL, OK, WARN, Check, Report

__all__ = ["FAIL", "OK", "WARN", "Check", "Report", "examine"]
