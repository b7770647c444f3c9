// Command cnilab-cni is cnilab's CNI plugin. A container runtime executes it
// with the CNI environment and the network configuration on stdin; the logic
// lives in github.com/cnilab/cnilab/datapath/cni.
package main

import "github.com/cnilab/cnilab/datapath/cni"

// version is stamped by the Makefile with -ldflags "-X main.version=...".
var version = "dev"

func main() { cni.Main(version) }
