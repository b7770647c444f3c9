// Package cni installs a pod network into a lab cluster, node by node, the way
// a CNI's DaemonSet would: it starts the CNI's node programs in each node and
// writes the node's CNI configuration.
package cni

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
)

// Node is one node as an installer sees it; every path is the node's own.
type Node struct {
	Name    string
	IP      string
	Dir     string // root of the node's files, in the node's own paths
	ConfDir string // the node's CNI configuration directory
	Host    NodeHost
	// LogDir is where the host keeps (or collects) the node's daemon logs,
	// for error messages.
	LogDir string
}

// RunDir is the node's /run.
func (n Node) RunDir() string { return filepath.Join(n.Dir, "run") }

// Env is the cluster an installer works on.
type Env struct {
	Lab         string
	Dir         string // lab state directory
	ToolsDir    string
	BinDir      string // cnilab's own binaries
	CNIBinDir   string
	ClusterCIDR string
	ServiceCIDR string
	Client      kubernetes.Interface
	// Kubeconfig returns a kubeconfig for user (and groups) that reaches the
	// API server from inside the lab.
	Kubeconfig func(user string, groups ...string) ([]byte, error)
	Progress   io.Writer
	// NoIPMasq leaves out flanneld's --ip-masq, for nodes without iptables
	// (VM guests: lab traffic never leaves the cluster, so nothing is lost).
	NoIPMasq bool
}

// Installer installs one CNI.
type Installer interface {
	// Name is the CNI's name as users type it.
	Name() string
	// Binaries lists the files the installer needs, so their absence is
	// reported before anything is made.
	Binaries(env Env) []string
	// Install brings the CNI up on every node and returns once every node has
	// a CNI configuration.
	Install(ctx context.Context, env Env, nodes []Node) error
}

// ForName returns the installer of a CNI.
func ForName(name string) (Installer, error) {
	switch name {
	case "flannel":
		return Flannel{}, nil
	case "cnilab":
		return Cnilab{Mode: "native"}, nil
	case "cnilab-vxlan":
		return Cnilab{Mode: "vxlan"}, nil
	}
	return nil, fmt.Errorf("unknown CNI %q", name)
}

// CheckBinaries names the first missing binary.
func CheckBinaries(paths []string) error {
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil || st.Mode()&0o111 == 0 {
			return fmt.Errorf("%s not found in %s: run 'make tools'", filepath.Base(p), filepath.Dir(p))
		}
	}
	return nil
}
