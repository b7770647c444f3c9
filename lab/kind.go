package lab

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/lab/internal/kube"
	kindprovider "github.com/cnilab/cnilab/lab/internal/providers/kind"
)

// withKind is an Option that sets up the kind provider's settings.
func withKind(set func(k *config.Kind)) Option {
	return func(c *config.Config) {
		if c.Kind == nil {
			c.Kind = &config.Kind{}
		}
		set(c.Kind)
	}
}

// WithRetain keeps, for the kind provider, a cluster whose bring-up failed,
// to look into (remove it with `cnilab lab down --provider kind`).
func WithRetain(retain bool) Option {
	return withKind(func(k *config.Kind) { k.Retain = retain })
}

// WithKindNodeImage chooses, for the kind provider, the kindest/node image
// (the Kubernetes version) of every node.
func WithKindNodeImage(image string) Option {
	return withKind(func(k *config.Kind) { k.NodeImage = image })
}

// WithImages chooses, for the kind provider, the cnilab and cnilab-probe
// images loaded into the nodes ("" keeps the manifests' defaults).
func WithImages(image, probeImage string) Option {
	return withKind(func(k *config.Kind) { k.Image, k.ProbeImage = image, probeImage })
}

// kindStateDir keeps kind labs' kubeconfigs: CNILAB_KIND_STATE_DIR, else
// cnilab/kind in the user's cache directory (kind needs no root, so neither
// does its state), else a directory under the system's temporary one.
func kindStateDir() string {
	if d := os.Getenv("CNILAB_KIND_STATE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "cnilab", "kind")
	}
	return filepath.Join(os.TempDir(), "cnilab-kind")
}

// kindAdapter makes labs that are kind clusters.
type kindAdapter struct {
	p kindprovider.Provider
}

func newKindAdapter(progress io.Writer) *kindAdapter {
	return &kindAdapter{p: kindprovider.Provider{StateDir: kindStateDir(), Progress: progress}}
}

func (a *kindAdapter) Name() string { return kindprovider.Name }

// Create makes a kind lab: by default one control plane and two workers,
// with the CNI of the options.
func (a *kindAdapter) Create(ctx context.Context, opts ...Option) (Cluster, error) {
	cfg := config.Default()
	cfg.Nodes = config.DefaultKindNodes
	for _, o := range opts {
		o(&cfg)
	}
	cfg.Provider = kindprovider.Name
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := kindprovider.Options{Name: cfg.Name, Nodes: cfg.Nodes, CNI: cfg.CNI, PodSubnet: cfg.ClusterCIDR, ServiceSubnet: cfg.ServiceCIDR}
	if k := cfg.Kind; k != nil {
		o.Retain, o.NodeImage, o.Image, o.ProbeImage = k.Retain, k.NodeImage, k.Image, k.ProbeImage
	}
	c, err := a.p.Create(ctx, o)
	if err != nil {
		return nil, err
	}
	return &kindCluster{c}, nil
}

func (a *kindAdapter) Get(name string) (Cluster, error) {
	c, err := a.p.Get(name)
	if err != nil {
		return nil, err
	}
	return &kindCluster{c}, nil
}

func (a *kindAdapter) Delete(name string) error { return a.p.Delete(name) }
func (a *kindAdapter) DeleteAll() error         { return a.p.DeleteAll() }
func (a *kindAdapter) List() ([]string, error)  { return a.p.List() }

type kindCluster struct{ *kindprovider.Cluster }

func (c *kindCluster) Provider() string { return kindprovider.Name }

func (c *kindCluster) Nodes() []Node { return nodesOf(c.Cluster.Nodes()) }

func (c *kindCluster) ExecPod(ctx context.Context, namespace, pod string, argv []string) (ExecResult, error) {
	r, err := c.Cluster.ExecPod(ctx, namespace, pod, argv)
	return ExecResult(r), err
}

func (c *kindCluster) ExecNode(ctx context.Context, node string, argv []string) (ExecResult, error) {
	r, err := c.Cluster.ExecNode(ctx, node, argv)
	return ExecResult(r), err
}

// nodesOf converts the API's nodes to the lab's.
func nodesOf(ns []kube.Node) []Node {
	out := make([]Node, 0, len(ns))
	for _, n := range ns {
		out = append(out, Node{Name: n.Name, IP: n.IP})
	}
	return out
}
