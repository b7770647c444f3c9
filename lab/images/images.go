// Package images builds the lab's container images without Docker: cnilab's
// own (the agent with its CNI plugin, the probe) and the stand-ins for the
// upstream images a lab with real nodes runs (agnhost, pause, kube-proxy,
// CoreDNS, flannel), each a `docker save` tarball named as the manifests
// and kubelets expect. It is the public face of lab/internal/images, which
// documents what each image holds.
package images

import (
	"context"
	"path/filepath"

	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/lab/internal/images"
)

type (
	// Options of Build.
	Options = images.Options
	// Dirs are where the images' inputs are.
	Dirs = images.Dirs
	// Record is what images.json says of one image.
	Record = images.Record
	// MissingInputError is an input file that does not exist.
	MissingInputError = images.MissingInputError
)

// IndexFile is the list of built images in the output directory.
const IndexFile = images.IndexFile

// DefaultDirs are _output/bin, _output/tools/bin and _output/tools/cni/bin
// as the lab finds them (config.FindBinDirs).
func DefaultDirs() Dirs {
	bin, tools, cniBin := config.FindBinDirs()
	return Dirs{Bin: bin, Tools: tools, CNIBin: cniBin}
}

// DefaultOutput is _output/images.
func DefaultOutput() string {
	return filepath.Join(config.OutputDir(), "images")
}

// Names lists the images by short name, in build order.
func Names() []string { return images.Names() }

// Build builds the images o.Only names (all when empty) into o.Output,
// skipping those whose inputs have not changed; an image that fails does
// not stop the others.
func Build(ctx context.Context, o Options) ([]Record, error) { return images.Build(ctx, o) }

// Records reads dir/images.json: the images built there, in name order.
func Records(dir string) ([]Record, error) { return images.Records(dir) }
