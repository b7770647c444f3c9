//go:build tools

// Package runc only records the runc command this module builds, so that
// `go mod tidy` keeps its dependencies.
package runc

import (
	_ "github.com/opencontainers/runc"
)
