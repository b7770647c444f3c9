//go:build tools

// Package helm only records the Helm command this module builds, so that
// `go mod tidy` keeps its dependencies.
package helm

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
