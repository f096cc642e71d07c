"""Obtaining, renewing and cancelling delegation tokens: one module per service (WebHDFS, KMS, the Hive metastore)."""
