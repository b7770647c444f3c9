// Package config holds the plain description of a lab cluster: its name,
// provider, CNI, size and address plan, with defaults and validation. It has no
// side effects, so every check on user input is testable without root.
package config

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/cnilab/cnilab/internal/outdir"
)

// Defaults.
const (
	DefaultName        = "cnilab"
	DefaultProvider    = "netns"
	DefaultCNI         = "flannel"
	DefaultNodes       = 2
	DefaultStateDir    = "/run/cnilab"
	DefaultUnderlay    = "172.30.0.0/24"
	DefaultClusterCIDR = "10.244.0.0/16"
	DefaultServiceCIDR = "10.96.0.0/16"
	DefaultNodeMask    = 24
	MaxNodes           = 64
)

// Providers and CNIs the lab knows. The CNI "existing" is the pod network an
// existing cluster already has: the existing provider's only CNI, and no
// other provider's.
var (
	Providers = []string{"netns", "qemu", "kind", "existing"}
	CNIs      = []string{"flannel", "cnilab", "cnilab-vxlan", "existing"}
)

// Node kinds. A light node is the lab's own node role (pod namespaces and
// the CNI through libcni, no runtime); a real node runs containerd and the
// kubelet in a sandbox of its own.
const (
	NodeKindLight = "light"
	NodeKindReal  = "real"
)

// NodeKinds lists the node kinds.
var NodeKinds = []string{NodeKindLight, NodeKindReal}

// DefaultNodeKind is the node kind `cnilab lab up` and `make e2e` give a
// provider's labs when none is asked for: real on the netns provider, light
// on qemu (whose guests do not run containerd and the kubelet yet). A Config
// with an empty NodeKind is light: the library's callers (bench, the light
// fast paths) choose.
func DefaultNodeKind(provider string) string {
	if provider == "netns" {
		return NodeKindReal
	}
	return NodeKindLight
}

// ExistingCNI is the CNI of the existing provider: whatever the cluster has.
const ExistingCNI = "existing"

// DefaultKindNodes is the kind provider's default size: one control plane
// and two workers.
const DefaultKindNodes = 3

// Config describes one lab.
type Config struct {
	Name      string `json:"name"`
	Provider  string `json:"provider"`
	CNI       string `json:"cni"`
	Nodes     int    `json:"nodes"`
	APIPort   int    `json:"apiPort"` // loopback port of the API port-forward; 0 picks a free one
	StateDir  string `json:"stateDir"`
	BinDir    string `json:"binDir"`    // cnilab, cnilab-probe
	ToolsDir  string `json:"toolsDir"`  // etcd, kube-*, flanneld
	CNIBinDir string `json:"cniBinDir"` // reference CNI plugins
	// DatapathBinDir, when set, holds the cnilab-agent and cnilab-cni this
	// lab runs instead of BinDir's: another build of the datapath (an older
	// commit), so a bench can compare two builds in one run. netns only.
	DatapathBinDir string `json:"datapathBinDir,omitempty"`
	Underlay       string `json:"underlay"`
	ClusterCIDR    string `json:"clusterCIDR"`
	ServiceCIDR    string `json:"serviceCIDR"`
	NodeMask       int    `json:"nodeMask"`
	// NoKubeProxy leaves kube-proxy out. Every lab runs it by default (as
	// nearly every real cluster does): kube-proxy in iptables mode on every
	// node, for the netns and qemu providers. Flannel labs always run it.
	NoKubeProxy bool `json:"noKubeProxy,omitempty"`
	// NodeKind is light (the default, also when empty) or real.
	NodeKind string `json:"nodeKind,omitempty"`
	// QEMU is set for the qemu provider.
	QEMU *QEMU `json:"qemu,omitempty"`
	// Kind holds the kind provider's settings.
	Kind *Kind `json:"kind,omitempty"`
	// Kubeconfig is, for the existing provider, the path of the cluster's
	// kubeconfig ("" means CNILAB_KUBECONFIG, KUBECONFIG or ~/.kube/config).
	Kubeconfig string `json:"kubeconfig,omitempty"`
}

// Kind says how the kind provider makes its cluster.
type Kind struct {
	// Retain keeps the kind cluster when its bring-up fails, to look into.
	Retain bool `json:"retain,omitempty"`
	// NodeImage is the kindest/node image; "" is the kind release's default.
	NodeImage string `json:"nodeImage,omitempty"`
	// Image and ProbeImage are the cnilab and cnilab-probe images loaded into
	// the nodes; "" means the manifests' defaults (what `make images` tags).
	Image      string `json:"image,omitempty"`
	ProbeImage string `json:"probeImage,omitempty"`
}

// QEMU says which kernel the qemu provider's VMs boot and how.
type QEMU struct {
	Kernel     string `json:"kernel"`     // catalog name, e.g. 6.12
	Release    string `json:"release"`    // uname -r of the guests
	Vmlinuz    string `json:"vmlinuz"`    // host path
	ModulesDir string `json:"modulesDir"` // host path of lib/modules/<release>
	MemoryMiB  int    `json:"memoryMiB"`
	CPUs       int    `json:"cpus"`
	// BootTimeout bounds the wait for a guest to answer on its control
	// channel, in seconds.
	BootTimeout int `json:"bootTimeout"`
	// ExtraArgs are appended to every VM's QEMU command line (tests use
	// "-S" to make a VM that never runs).
	ExtraArgs []string `json:"extraArgs,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$`)

// Default returns a config with every default filled in; binary directories are
// found from the running executable (see FindBinDirs).
func Default() Config {
	c := Config{
		Name: DefaultName, Provider: DefaultProvider, CNI: DefaultCNI, Nodes: DefaultNodes,
		StateDir: DefaultStateDir, Underlay: DefaultUnderlay, ClusterCIDR: DefaultClusterCIDR,
		ServiceCIDR: DefaultServiceCIDR, NodeMask: DefaultNodeMask,
	}
	c.BinDir, c.ToolsDir, c.CNIBinDir = FindBinDirs()
	return c
}

// FindBinDirs locates _output/bin, _output/tools/bin and _output/tools/cni/bin:
// from CNILAB_OUTPUT if set, else next to the running executable when it lives
// in _output/bin, else in the nearest enclosing directory holding _output.
func FindBinDirs() (bin, tools, cniBin string) {
	out := outdir.Find()
	return filepath.Join(out, "bin"), filepath.Join(out, "tools", "bin"), filepath.Join(out, "tools", "cni", "bin")
}

// Real says the lab's nodes run containerd and the kubelet.
func (c Config) Real() bool { return c.NodeKind == NodeKindReal }

// Validate checks every field and names the first problem.
func (c Config) Validate() error {
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("invalid lab name %q: use 1-20 lowercase letters, digits and '-', starting and ending with a letter or digit", c.Name)
	}
	if !contains(Providers, c.Provider) {
		return fmt.Errorf("unknown provider %q: known providers are %s", c.Provider, strings.Join(Providers, ", "))
	}
	if !contains(CNIs, c.CNI) {
		return fmt.Errorf("unknown CNI %q: known CNIs are %s", c.CNI, strings.Join(CNIs, ", "))
	}
	if (c.CNI == ExistingCNI) != (c.Provider == "existing") {
		if c.Provider == "existing" {
			return fmt.Errorf("the existing provider runs on the cluster's own pod network: use CNI %q, not %q", ExistingCNI, c.CNI)
		}
		var installable []string
		for _, n := range CNIs {
			if n != ExistingCNI {
				installable = append(installable, n)
			}
		}
		return fmt.Errorf("CNI %q is only for the existing provider; the %s provider installs one of %s", ExistingCNI, c.Provider, strings.Join(installable, ", "))
	}
	if c.NoKubeProxy && c.CNI == "flannel" {
		return fmt.Errorf("a flannel lab always runs kube-proxy: flannel has no Service handling of its own")
	}
	if c.NodeKind != "" && !contains(NodeKinds, c.NodeKind) {
		return fmt.Errorf("unknown node kind %q: known kinds are %s", c.NodeKind, strings.Join(NodeKinds, ", "))
	}
	if c.Real() && c.Provider != "netns" {
		return fmt.Errorf("real nodes run on the netns provider only so far, not on %s", c.Provider)
	}
	if c.DatapathBinDir != "" && (c.Provider != "netns" || !strings.HasPrefix(c.CNI, "cnilab")) {
		return fmt.Errorf("another build's datapath (%s) runs only in a cnilab lab of the netns provider, not a %s lab of the %s provider", c.DatapathBinDir, c.CNI, c.Provider)
	}
	if c.Nodes < 1 || c.Nodes > MaxNodes {
		return fmt.Errorf("invalid node count %d: must be between 1 and %d", c.Nodes, MaxNodes)
	}
	if c.Provider == "qemu" && (c.QEMU == nil || c.QEMU.Kernel == "") {
		return fmt.Errorf("the qemu provider needs a kernel: give one from the catalog (see 'cnilab kernels list')")
	}
	if c.APIPort < 0 || c.APIPort > 65535 {
		return fmt.Errorf("invalid API port %d: must be between 1 and 65535, or 0 for any free port", c.APIPort)
	}
	under, err := v4Net("underlay", c.Underlay)
	if err != nil {
		return err
	}
	if ones, _ := under.Mask.Size(); ones > 32-7 || 1<<(32-ones) < c.Nodes+12 {
		return fmt.Errorf("underlay %s is too small for %d nodes", c.Underlay, c.Nodes)
	}
	cluster, err := v4Net("cluster CIDR", c.ClusterCIDR)
	if err != nil {
		return err
	}
	svc, err := v4Net("service CIDR", c.ServiceCIDR)
	if err != nil {
		return err
	}
	ones, _ := cluster.Mask.Size()
	if c.NodeMask <= ones || c.NodeMask > 28 {
		return fmt.Errorf("node CIDR mask /%d must be longer than the cluster CIDR's /%d and at most /28", c.NodeMask, ones)
	}
	if 1<<(c.NodeMask-ones) < c.Nodes {
		return fmt.Errorf("cluster CIDR %s holds only %d node CIDRs of /%d, fewer than %d nodes", c.ClusterCIDR, 1<<(c.NodeMask-ones), c.NodeMask, c.Nodes)
	}
	for _, p := range [][2]*net.IPNet{{under, cluster}, {under, svc}, {cluster, svc}} {
		if p[0].Contains(p[1].IP) || p[1].Contains(p[0].IP) {
			return fmt.Errorf("address ranges %s and %s overlap", p[0], p[1])
		}
	}
	return nil
}

// Dir is the lab's state directory.
func (c Config) Dir() string { return filepath.Join(c.StateDir, c.Name) }

// NetnsPrefix is the prefix of every network namespace of this lab.
func (c Config) NetnsPrefix() string { return NetnsPrefix + c.Name + "." }

// NetnsPrefix starts the name of every network namespace any lab makes.
const NetnsPrefix = "cnilab."

// UnderlayNetns names the namespace holding the underlay bridge and the
// control plane.
func (c Config) UnderlayNetns() string { return c.NetnsPrefix() + "underlay" }

// NodeName is the Kubernetes name of node i (1-based).
func (c Config) NodeName(i int) string { return fmt.Sprintf("%s-node-%d", c.Name, i) }

// NodeNetns names the namespace of node i.
func (c Config) NodeNetns(i int) string { return fmt.Sprintf("%snode-%d", c.NetnsPrefix(), i) }

// PodNetns names the namespace of the pod with the given UID.
func (c Config) PodNetns(uid string) string { return c.NetnsPrefix() + "pod." + uid }

// ControlPlaneIP is the API server's address on the underlay (the bridge's).
func (c Config) ControlPlaneIP() net.IP { return c.underlayHost(1) }

// NodeIP is node i's address on the underlay.
func (c Config) NodeIP(i int) net.IP { return c.underlayHost(10 + i) }

// UnderlayPrefix is the prefix length of the underlay.
func (c Config) UnderlayPrefix() int {
	_, n, _ := net.ParseCIDR(c.Underlay)
	ones, _ := n.Mask.Size()
	return ones
}

func (c Config) underlayHost(i int) net.IP {
	_, n, _ := net.ParseCIDR(c.Underlay)
	ip := append(net.IP(nil), n.IP.To4()...)
	v := uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
	v += uint32(i)
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func v4Net(what, s string) (*net.IPNet, error) {
	ip, n, err := net.ParseCIDR(s)
	if err != nil || ip.To4() == nil {
		return nil, fmt.Errorf("invalid %s %q: want an IPv4 CIDR such as 10.0.0.0/16", what, s)
	}
	if !ip.Equal(n.IP) {
		return nil, fmt.Errorf("invalid %s %q: host bits set (did you mean %s?)", what, s, n)
	}
	return n, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
