// Package lab is the public face of cnilab's test lab: a Provider makes a
// Cluster (nodes, a real Kubernetes control plane, a CNI) and a Cluster runs
// commands in its pods and nodes. Providers live under internal/; this package
// only chooses one and adapts it.
package lab

import (
	"context"
	"fmt"
	"io"
	"syscall"

	"k8s.io/client-go/kubernetes"

	"github.com/cnilab/cnilab/lab/config"
)

// Node is one node of a lab cluster.
type Node struct {
	Name string // Kubernetes node name
	IP   string // address on the lab underlay
}

// ExecResult is the output and exit code of a command run in a pod or node.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// Cluster is a running lab cluster.
type Cluster interface {
	Name() string
	Provider() string
	CNI() string
	// Kubeconfig is the path of an admin kubeconfig usable from this machine.
	Kubeconfig() string
	// KernelRelease is the kernel the nodes run.
	KernelRelease() string
	Nodes() []Node
	Client() (kubernetes.Interface, error)
	// ExecPod runs argv in the pod's network namespace, as kubectl exec would
	// in a container; a non-zero exit is reported in the result, not as error.
	ExecPod(ctx context.Context, namespace, pod string, argv []string) (ExecResult, error)
	// ExecNode runs argv on the node (in its network namespace).
	ExecNode(ctx context.Context, node string, argv []string) (ExecResult, error)
}

// Provider makes, finds and removes clusters.
type Provider interface {
	Name() string
	Create(ctx context.Context, opts ...Option) (Cluster, error)
	Get(name string) (Cluster, error)
	Delete(name string) error
	// DeleteAll removes every lab of this provider, including what a killed
	// run left behind.
	DeleteAll() error
	List() ([]string, error)
}

// Option changes how a cluster is created.
type Option func(*config.Config)

// WithName names the lab.
func WithName(name string) Option { return func(c *config.Config) { c.Name = name } }

// WithCNI chooses the pod network.
func WithCNI(cni string) Option { return func(c *config.Config) { c.CNI = cni } }

// WithNodes sets the number of nodes.
func WithNodes(n int) Option { return func(c *config.Config) { c.Nodes = n } }

// WithKubeProxy runs kube-proxy (iptables mode) on every node, or not
// (netns and qemu providers; the default is to run it, and a flannel lab
// always does).
func WithKubeProxy(on bool) Option { return func(c *config.Config) { c.NoKubeProxy = !on } }

// WithNodeKind makes the nodes real (containerd and the kubelet) or light
// (the lab's own node role); see config.NodeKinds.
func WithNodeKind(kind string) Option { return func(c *config.Config) { c.NodeKind = kind } }

// WithDatapathBinDir runs the cnilab-agent and cnilab-cni of another build
// (a directory such as an older commit's _output/bin) in the lab's cnilab
// nodes; the rest of the lab is this build's. netns provider only.
func WithDatapathBinDir(dir string) Option { return func(c *config.Config) { c.DatapathBinDir = dir } }

// WithAPIPort fixes the loopback port of the API server's port-forward.
func WithAPIPort(p int) Option { return func(c *config.Config) { c.APIPort = p } }

// WithConfig replaces the whole configuration.
func WithConfig(cfg config.Config) Option { return func(c *config.Config) { *c = cfg } }

// NewProvider returns the named provider; progress (may be nil) receives
// bring-up progress lines. The existing provider's kubeconfig is given to
// Create with WithKubeconfig, or comes from the environment (see
// NewExistingProvider).
func NewProvider(name string, progress io.Writer) (Provider, error) {
	switch name {
	case "netns", "":
		return &netnsAdapter{p: engine(), progress: progress}, nil
	case "qemu":
		return &qemuAdapter{netnsAdapter{p: engine(), progress: progress}}, nil
	case "kind":
		return newKindAdapter(progress), nil
	case "existing":
		return NewExistingProvider("", progress), nil
	}
	return nil, fmt.Errorf("unknown provider %q: known providers are %v", name, config.Providers)
}

// IsolationChecker is implemented by providers that can prove their cluster
// has no path to the machine's real network.
type IsolationChecker interface {
	CheckIsolation() error
}

// AgentRestarter is implemented by clusters that can restart the CNI's
// per-node agent (flanneld, cnilab-agent) in place.
type AgentRestarter interface {
	RestartNodeAgent(node string, sig syscall.Signal) error
}

// AgentStopper is implemented by clusters that can stop the CNI's per-node
// agent and later start it again as it was, leaving the datapath it loaded
// in the kernel meanwhile.
type AgentStopper interface {
	StopNodeAgent(node string, sig syscall.Signal) error
	StartNodeAgent(node string) error
}

// AgentStatuser is implemented by clusters whose CNI agent publishes a status
// document (cnilab).
type AgentStatuser interface {
	AgentStatus(ctx context.Context, node string) (map[string]any, error)
}

// AgentSocketer is implemented by clusters whose nodes run a cnilab agent
// reachable on a unix socket from this machine (flows, metrics, status).
type AgentSocketer interface {
	AgentSocket(node string) (string, error)
}
