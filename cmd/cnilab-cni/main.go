// Command cnilab-cni is cnilab's CNI plugin. A container runtime executes it
// with the CNI environment and the network configuration on stdin; the logic
// lives in github.com/cnilab/cnilab/datapath/cni.
//
// `cnilab-cni install [DIR]` (argv[1] "install" and no CNI_COMMAND in the
// environment, which a runtime always sets) copies the plugin's own
// executable into DIR/cnilab-cni instead: the cnilab DaemonSet's init
// container runs it to put the plugin on the host, in an image that has no
// shell and no cp.
package main

import (
	"os"

	"github.com/cnilab/cnilab/datapath/cni"
)

// version is stamped by the Makefile with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if installRequested(os.Args) {
		os.Exit(runInstall(os.Args[2:], os.Stdout, os.Stderr))
	}
	cni.Main(version)
}
