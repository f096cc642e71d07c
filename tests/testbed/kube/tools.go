//go:build tools

// Package tools pins the upstream Kubernetes commands that the test bed builds with
// `go build k8s.io/kubernetes/cmd/...`; this file is never compiled.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
