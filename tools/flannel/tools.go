//go:build tools

// Package flannel only records the command this module builds (flanneld, the
// main package at the root of github.com/flannel-io/flannel), so that
// `go mod tidy` keeps its dependencies.
package flannel

import (
	_ "github.com/flannel-io/flannel"
)
