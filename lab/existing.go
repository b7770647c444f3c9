package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/lab/internal/kube"
	existingprovider "github.com/cnilab/cnilab/lab/internal/providers/existing"
)

// WithKubeconfig names, for the existing provider, the kubeconfig of the
// cluster ("" means CNILAB_KUBECONFIG, KUBECONFIG or ~/.kube/config).
func WithKubeconfig(path string) Option {
	return func(c *config.Config) { c.Kubeconfig = path }
}

// Labels that mark what cnilab made in a cluster: nothing without
// OwnedLabel=true is ever deleted by a lab.
const (
	OwnedLabel    = kube.OwnedLabel
	LabLabel      = kube.LabLabel
	ProviderLabel = kube.ProviderLabel
)

// OwnerLabels are the labels of a namespace made for cluster c, which
// Delete of c's provider removes with the cluster (for the existing
// provider: only those).
func OwnerLabels(c Cluster) map[string]string { return kube.OwnerLabels(c.Provider(), c.Name()) }

// NewExistingProvider is the existing provider for the cluster of
// kubeconfig ("" resolves it from the environment, see WithKubeconfig).
func NewExistingProvider(kubeconfig string, progress io.Writer) Provider {
	return &existingAdapter{kubeconfig: kubeconfig, progress: progress}
}

// existingAdapter runs labs on clusters that already exist.
type existingAdapter struct {
	kubeconfig string
	progress   io.Writer
}

func (a *existingAdapter) Name() string { return existingprovider.Name }

func (a *existingAdapter) provider(kubeconfig string) existingprovider.Provider {
	if kubeconfig == "" {
		kubeconfig = a.kubeconfig
	}
	return existingprovider.Provider{Kubeconfig: kubeconfig, Progress: a.progress, RunnerFor: localLabRunner}
}

// Create connects to the cluster and makes the lab's namespace. The lab's
// CNI is "existing": the cluster's own; WithNodes is the least number of
// Ready nodes that take pods the cluster must have.
func (a *existingAdapter) Create(ctx context.Context, opts ...Option) (Cluster, error) {
	cfg := config.Default()
	cfg.CNI = config.ExistingCNI
	for _, o := range opts {
		o(&cfg)
	}
	cfg.Provider = existingprovider.Name
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := a.provider(cfg.Kubeconfig).Create(ctx, existingprovider.Options{Name: cfg.Name, Nodes: cfg.Nodes})
	if err != nil {
		return nil, err
	}
	return wrapExisting(c), nil
}

func (a *existingAdapter) Get(name string) (Cluster, error) {
	c, err := a.provider("").Get(name)
	if err != nil {
		return nil, err
	}
	return wrapExisting(c), nil
}

func (a *existingAdapter) Delete(name string) error { return a.provider("").Delete(name) }
func (a *existingAdapter) DeleteAll() error         { return a.provider("").DeleteAll() }
func (a *existingAdapter) List() ([]string, error)  { return a.provider("").List() }

// existingCluster is a lab on an existing cluster.
type existingCluster struct{ *existingprovider.Cluster }

func (c *existingCluster) Provider() string { return existingprovider.Name }
func (c *existingCluster) CNI() string      { return config.ExistingCNI }
func (c *existingCluster) Nodes() []Node    { return nodesOf(c.Cluster.Nodes()) }

func (c *existingCluster) ExecPod(ctx context.Context, namespace, pod string, argv []string) (ExecResult, error) {
	r, err := c.Cluster.ExecPod(ctx, namespace, pod, argv)
	return ExecResult(r), err
}

func (c *existingCluster) ExecNode(ctx context.Context, node string, argv []string) (ExecResult, error) {
	r, err := c.Cluster.ExecNode(ctx, node, argv)
	return ExecResult(r), err
}

// existingLabCluster is an existing cluster that is a lab of this machine
// (see localLabRunner). What its nodes run can be asked of the lab: the
// cnilab agents' status, flows and metrics (AgentStatuser, AgentSocketer),
// and the lab's logs. It offers nothing that changes the lab (no agent
// restarts): the suite only adds and removes its own namespaces there.
type existingLabCluster struct {
	existingCluster
	lab Cluster
}

// AgentStatus asks the lab's agent on node.
func (c *existingLabCluster) AgentStatus(ctx context.Context, node string) (map[string]any, error) {
	st, ok := c.lab.(AgentStatuser)
	if !ok {
		return nil, fmt.Errorf("not available: lab %s (%s) publishes no agent status", c.lab.Name(), c.lab.CNI())
	}
	return st.AgentStatus(ctx, node)
}

// AgentSocket is the lab's agent socket on node.
func (c *existingLabCluster) AgentSocket(node string) (string, error) {
	s, ok := c.lab.(AgentSocketer)
	if !ok {
		return "", fmt.Errorf("not available: lab %s (%s) has no agent socket", c.lab.Name(), c.lab.CNI())
	}
	return s.AgentSocket(node)
}

// backingLab is the lab behind the existing cluster, for its logs.
func (c *existingLabCluster) backingLab() Cluster { return c.lab }

func wrapExisting(c *existingprovider.Cluster) Cluster {
	if r, ok := c.Runner().(labRunner); ok {
		return &existingLabCluster{existingCluster{c}, r.lab}
	}
	return &existingCluster{c}
}

// labRunner runs commands through a lab of this machine.
type labRunner struct{ lab Cluster }

func (r labRunner) ExecPod(ctx context.Context, namespace, pod string, argv []string) (kube.ExecResult, error) {
	res, err := r.lab.ExecPod(ctx, namespace, pod, argv)
	return kube.ExecResult(res), err
}

func (r labRunner) ExecNode(ctx context.Context, node string, argv []string) (kube.ExecResult, error) {
	res, err := r.lab.ExecNode(ctx, node, argv)
	return kube.ExecResult(res), err
}

// localLabRunner decides how the existing provider runs commands on a
// cluster. Normally through the API server: exec into the pod's container,
// and into a hostNetwork shell pod for a node. But the cluster may be a lab
// that `cnilab lab up` started on this machine (netns or qemu provider), as
// when `make e2e PROVIDER=existing KUBECONFIG=/run/cnilab/NAME/kubeconfig`
// runs the suite against it. Such a lab has no kubelets and no containers:
// its pods are network namespaces the node role makes, so the API server's
// exec cannot reach them, and a shell pod would never run. For that cluster
// the commands run the way the lab runs them, through the lab itself
// (NewProvider("netns").Get(name)); everything else stays the existing
// provider's, which creates and deletes only its own namespaces there.
//
// The kubeconfig belongs to lab NAME when its current cluster is named
// cnilab-NAME (as the lab's kubeconfigs are), the lab's state
// (STATE_DIR/NAME/lab.json) is on this machine, and the kubeconfig's server
// is the lab's API port-forward (127.0.0.1:PORT). Any other cluster, or a
// kubeconfig of a lab that is gone, gets the API server's exec.
func localLabRunner(kc *kube.Kubeconfig) (existingprovider.Runner, error) {
	name, ok := strings.CutPrefix(kc.Cluster, "cnilab-")
	if !ok || name == "" {
		return nil, nil
	}
	p, err := NewProvider("netns", nil)
	if err != nil {
		return nil, err
	}
	l, err := p.Get(name)
	if err != nil {
		return nil, nil // not a lab of this machine (any more)
	}
	nc, ok := l.(*netnsCluster)
	if !ok {
		return nil, nil
	}
	host, port, err := kc.ServerPort()
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || port != strconv.Itoa(nc.Config().APIPort) {
		return nil, nil
	}
	return labRunner{lab: l}, nil
}
