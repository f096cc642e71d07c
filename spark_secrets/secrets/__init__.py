"""The formats of the Kubernetes Secrets a job gets: its token Secret and its job-secrets Secret."""
