//go:build tools

// Keeps the control-plane commands in go.mod's graph for `go mod tidy`.
package realkube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
