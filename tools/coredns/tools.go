//go:build tools

// Package coredns only records the CoreDNS command this module builds, so
// that `go mod tidy` keeps its dependencies.
package coredns

import (
	_ "github.com/coredns/coredns"
)
