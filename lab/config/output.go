package config

import "github.com/cnilab/cnilab/internal/outdir"

// OutputDir is the _output directory FindBinDirs locates (CNILAB_OUTPUT, the
// directory above a running _output/bin executable, or the nearest enclosing
// _output), for callers that keep other things there, such as the kernel cache.
func OutputDir() string {
	return outdir.Find()
}
