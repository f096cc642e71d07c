//go:build tools

// Package tools names the operator's main package so that `go build` can build it from this module.
package tools

import _ "github.com/kubeflow/spark-operator/v2/cmd/operator"
