// Package outdir finds cnilab's _output directory, where the build puts its
// binaries (bin/), the tools (tools/), images and the kernel cache. It is
// its own package so that packages below the lab (kernels) find it without
// importing the lab's configuration.
package outdir

import (
	"os"
	"path/filepath"
)

// Find returns, in this order: $CNILAB_OUTPUT; the _output directory above
// a running _output/bin executable; the nearest _output directory enclosing
// the working directory; else "_output".
func Find() string {
	if out := os.Getenv("CNILAB_OUTPUT"); out != "" {
		return out
	}
	if exe, err := os.Executable(); err == nil && filepath.Base(filepath.Dir(exe)) == "bin" && filepath.Base(filepath.Dir(filepath.Dir(exe))) == "_output" {
		return filepath.Dir(filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if st, err := os.Stat(filepath.Join(d, "_output")); err == nil && st.IsDir() {
				return filepath.Join(d, "_output")
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "_output"
}
