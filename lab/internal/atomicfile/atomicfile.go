// Package atomicfile writes files that a reader sees whole or not at all:
// the content goes to a temporary file next to the target, which is then
// renamed over it.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteFile replaces path with data, atomically: it makes path's directory
// (and its parents) if needed, writes path+".tmp" with mode and renames it to
// path. Errors are those of the os calls, unwrapped.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
