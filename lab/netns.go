package lab

import (
	"context"
	"io"
	"os"

	"github.com/cnilab/cnilab/lab/config"
	netnsprovider "github.com/cnilab/cnilab/lab/internal/providers/netns"
	qemuprovider "github.com/cnilab/cnilab/lab/internal/providers/qemu"
)

// stateDir is where labs keep their state: CNILAB_STATE_DIR or /run/cnilab.
func stateDir() string {
	if d := os.Getenv("CNILAB_STATE_DIR"); d != "" {
		return d
	}
	return config.DefaultStateDir
}

// engine is the local-cluster engine with every node backend: its own
// namespaces (netns) and VMs (qemu).
func engine() netnsprovider.Provider {
	return netnsprovider.Provider{StateDir: stateDir(), Backends: map[string]netnsprovider.NodeBackend{
		"qemu": qemuprovider.Backend(),
	}}
}

type netnsAdapter struct {
	p        netnsprovider.Provider
	progress io.Writer
}

func (a *netnsAdapter) Name() string { return "netns" }

func (a *netnsAdapter) Create(ctx context.Context, opts ...Option) (Cluster, error) {
	return a.create(ctx, "netns", opts, nil)
}

// create makes a lab of provider from the default configuration with opts
// applied, once prepare (if any) has completed that configuration.
func (a *netnsAdapter) create(ctx context.Context, provider string, opts []Option, prepare func(*config.Config) error) (Cluster, error) {
	cfg := config.Default()
	for _, o := range opts {
		o(&cfg)
	}
	cfg.Provider = provider
	if prepare != nil {
		if err := prepare(&cfg); err != nil {
			return nil, err
		}
	}
	c, err := a.p.Create(ctx, cfg, a.progress)
	if err != nil {
		return nil, err
	}
	return &netnsCluster{c}, nil
}

func (a *netnsAdapter) Get(name string) (Cluster, error) {
	c, err := a.p.Get(name)
	if err != nil {
		return nil, err
	}
	return &netnsCluster{c}, nil
}

func (a *netnsAdapter) Delete(name string) error { return a.p.Delete(name) }
func (a *netnsAdapter) DeleteAll() error         { return a.p.DeleteAll() }
func (a *netnsAdapter) List() ([]string, error)  { return a.p.List() }

type netnsCluster struct{ *netnsprovider.Cluster }

func (c *netnsCluster) Name() string { return c.Config().Name }

// Provider is netns, or qemu for a qemu lab found through the netns
// provider (which lists and removes both).
func (c *netnsCluster) Provider() string {
	if p := c.Config().Provider; p != "" {
		return p
	}
	return "netns"
}
func (c *netnsCluster) CNI() string { return c.Config().CNI }

func (c *netnsCluster) Nodes() []Node {
	var out []Node
	for _, n := range c.Cluster.Nodes() {
		out = append(out, Node{Name: n.Name, IP: n.IP})
	}
	return out
}

func (c *netnsCluster) ExecPod(ctx context.Context, namespace, pod string, argv []string) (ExecResult, error) {
	r, err := c.Cluster.ExecPod(ctx, namespace, pod, argv)
	return ExecResult(r), err
}

func (c *netnsCluster) ExecNode(ctx context.Context, node string, argv []string) (ExecResult, error) {
	r, err := c.Cluster.ExecNode(ctx, node, argv)
	return ExecResult(r), err
}

// CheckNodeIsolation runs, on a VM node, the isolation check of its own
// namespace and pod namespaces (called inside the guest by the qemu provider).
func CheckNodeIsolation(cfg config.Config) error { return netnsprovider.CheckNodeIsolation(cfg) }
