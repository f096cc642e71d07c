"""Kubernetes: the API client, kubeconfig and exec plugins, the RBAC layouts."""
