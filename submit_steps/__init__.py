"""Submission steps: small classes that turn a Spark submission into one that carries delegation
tokens through a per-job Kubernetes Secret (see the issue tracker, issue 4; being built)."""
