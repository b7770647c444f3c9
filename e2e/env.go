package e2e

import (
	"os"
	"strconv"
)

// Env is how a run is configured: from the environment `make e2e` sets.
type Env struct {
	Provider  string // CNILAB_PROVIDER (netns)
	CNI       string // CNILAB_CNI (flannel)
	Nodes     int    // CNILAB_NODES (2)
	Kernel    string // CNILAB_KERNEL: catalog kernel for the qemu provider
	LabName   string // CNILAB_LAB (e2e-<cni>)
	Keep      bool   // CNILAB_KEEP=1 leaves the lab up after the run
	ReportDir string // CNILAB_REPORT_DIR (_output/report)
	// KubeProxy runs kube-proxy on the lab's nodes: CNILAB_KUBE_PROXY (1;
	// 0 leaves it out, netns and qemu providers, not for flannel).
	KubeProxy bool
	// NodeKind is the netns provider's node kind: CNILAB_NODE_KIND (light
	// or real; empty: light, the library's default; make e2e passes real
	// unless NODE_KIND says otherwise).
	NodeKind string
	// Kubeconfig is the existing provider's cluster: CNILAB_KUBECONFIG
	// (empty: the provider's own default, KUBECONFIG or ~/.kube/config).
	Kubeconfig string
}

// EnvFromOS reads the run configuration.
func EnvFromOS() Env {
	e := Env{
		Provider:   getenv("CNILAB_PROVIDER", "netns"),
		CNI:        getenv("CNILAB_CNI", "flannel"),
		Nodes:      2,
		Keep:       os.Getenv("CNILAB_KEEP") == "1",
		Kernel:     os.Getenv("CNILAB_KERNEL"),
		ReportDir:  getenv("CNILAB_REPORT_DIR", "_output/report"),
		Kubeconfig: os.Getenv("CNILAB_KUBECONFIG"),
		KubeProxy:  os.Getenv("CNILAB_KUBE_PROXY") != "0",
		NodeKind:   os.Getenv("CNILAB_NODE_KIND"),
	}
	if n, err := strconv.Atoi(os.Getenv("CNILAB_NODES")); err == nil {
		e.Nodes = n
	}
	e.LabName = getenv("CNILAB_LAB", "e2e-"+e.CNI)
	return e
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
