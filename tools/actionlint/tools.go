//go:build tools

// Package actionlint only records the workflow linter this module builds, so
// that `go mod tidy` keeps its dependencies.
package actionlint

import (
	_ "github.com/rhysd/actionlint/cmd/actionlint"
)
