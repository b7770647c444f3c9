// Package existing is the lab provider for a cluster that already runs, with
// its own pod network, reached through a kubeconfig. It creates nothing but
// its own namespace (cnilab-<lab>, labelled cnilab.io/owned=true), where it
// runs one hostNetwork pod per node on first use to run commands on that
// node, and it deletes only namespaces labelled as cnilab's and as this
// lab's.
package existing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/cnilab/cnilab/lab/internal/kube"
	"github.com/cnilab/cnilab/manifests"
)

// Name is the provider's name, and the CNI its clusters report.
const Name = "existing"

// Timeouts: for the cluster's nodes to be Ready, for the owned namespaces
// to go.
var (
	readyTimeout  = time.Minute
	deleteTimeout = 3 * time.Minute
)

// Runner runs commands in pods and on nodes some other way than through the
// API server's exec.
type Runner interface {
	ExecPod(ctx context.Context, namespace, pod string, argv []string) (kube.ExecResult, error)
	ExecNode(ctx context.Context, node string, argv []string) (kube.ExecResult, error)
}

// Provider connects to existing clusters.
type Provider struct {
	// Kubeconfig is the cluster's kubeconfig file; "" resolves it with
	// kube.ResolveKubeconfig (CNILAB_KUBECONFIG, KUBECONFIG, ~/.kube/config).
	Kubeconfig string
	// ProbeImage is the image of the node shell pods (default
	// manifests.DefaultProbeImage).
	ProbeImage string
	// Progress receives progress lines; nil discards them.
	Progress io.Writer
	// RunnerFor, when set, is asked of every cluster whether its commands
	// must run through a Runner instead of the API server's exec; it
	// returns nil for no.
	RunnerFor func(kc *kube.Kubeconfig) (Runner, error)
	// Connect makes the client of a kubeconfig file; nil is the real one
	// (tests give a fake).
	Connect func(kc *kube.Kubeconfig) (kubernetes.Interface, error)
}

// Options say which lab Create makes.
type Options struct {
	// Name of the lab: its namespace is cnilab-<Name>.
	Name string
	// Nodes is how many Ready, schedulable nodes the cluster must have (at
	// least one).
	Nodes int
}

// Cluster is an existing cluster as a lab.
type Cluster struct {
	name   string
	kc     *kube.Kubeconfig
	client kubernetes.Interface
	nodes  []kube.Node
	runner Runner
	shell  *kube.NodeShell
}

// Namespace is the namespace of lab name's own objects.
func Namespace(name string) string { return "cnilab-" + name }

// Owner are the labels of what the provider makes for lab name.
func Owner(name string) map[string]string { return kube.OwnerLabels(Name, name) }

func (p Provider) progress() io.Writer {
	if p.Progress == nil {
		return io.Discard
	}
	return p.Progress
}

// connect loads the kubeconfig and makes its client.
func (p Provider) connect() (*kube.Kubeconfig, kubernetes.Interface, error) {
	path, err := kube.ResolveKubeconfig(p.Kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	kc, err := kube.LoadKubeconfig(path)
	if err != nil {
		return nil, nil, err
	}
	connect := p.Connect
	if connect == nil {
		connect = func(kc *kube.Kubeconfig) (kubernetes.Interface, error) { return kc.Client() }
	}
	c, err := connect(kc)
	if err != nil {
		return nil, nil, err
	}
	return kc, c, nil
}

// Create connects to the cluster, checks that its API server answers and
// that it has o.Nodes Ready nodes to run pods on, and makes the lab's
// namespace.
func (p Provider) Create(ctx context.Context, o Options) (*Cluster, error) {
	if o.Name == "" {
		return nil, errors.New("existing cluster: the lab needs a name")
	}
	kc, c, err := p.connect()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(p.progress(), "Connecting to the cluster of %s (API server %s) as lab %q ...\n", kc.Path, kc.Server, o.Name)
	if _, err := c.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("existing cluster %s: the API server at %s does not answer: %w", kc.Path, kc.Server, err)
	}
	nodes, err := waitSchedulable(ctx, c, max(o.Nodes, 1), readyTimeout)
	if err != nil {
		return nil, fmt.Errorf("existing cluster %s: %w", kc.Path, err)
	}
	if err := kube.EnsureOwnedNamespace(ctx, c, Namespace(o.Name), Owner(o.Name)); err != nil {
		return nil, fmt.Errorf("existing cluster %s: %w", kc.Path, err)
	}
	cl, err := p.cluster(o.Name, kc, c, nodes)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(p.progress(), "Lab %q is the existing cluster of %s: %d nodes (%s)\n", o.Name, kc.Path, len(nodes), cl.KernelRelease())
	return cl, nil
}

// Get finds lab name on the cluster: its namespace must exist.
func (p Provider) Get(name string) (*Cluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kc, c, err := p.connect()
	if err != nil {
		return nil, err
	}
	nss, err := kube.OwnedNamespaces(ctx, c, map[string]string{kube.OwnedLabel: "true", kube.LabLabel: name, kube.ProviderLabel: Name})
	if err != nil {
		return nil, fmt.Errorf("existing cluster %s: %w", kc.Path, err)
	}
	if !slices.ContainsFunc(nss, func(ns corev1.Namespace) bool { return ns.Name == Namespace(name) }) {
		return nil, fmt.Errorf("no lab named %q on the cluster of %s (no namespace %s of cnilab's)", name, kc.Path, Namespace(name))
	}
	nodes, _, err := schedulableNodes(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("existing cluster %s: %w", kc.Path, err)
	}
	return p.cluster(name, kc, c, nodes)
}

func (p Provider) cluster(name string, kc *kube.Kubeconfig, c kubernetes.Interface, nodes []kube.Node) (*Cluster, error) {
	image := p.ProbeImage
	if image == "" {
		image = manifests.DefaultProbeImage
	}
	cl := &Cluster{name: name, kc: kc, client: c, nodes: nodes,
		shell: &kube.NodeShell{REST: kc.REST, Client: c, Namespace: Namespace(name), Image: image, Labels: Owner(name)}}
	if p.RunnerFor != nil {
		r, err := p.RunnerFor(kc)
		if err != nil {
			return nil, fmt.Errorf("existing cluster %s: %w", kc.Path, err)
		}
		cl.runner = r
	}
	return cl, nil
}

// Delete removes what lab name made on the cluster: every namespace
// labelled cnilab.io/owned=true, cnilab.io/provider=existing and
// cnilab.io/lab=<name> (its own, and those its users labelled so). Nothing
// else is touched.
func (p Provider) Delete(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout+30*time.Second)
	defer cancel()
	kc, c, err := p.connect()
	if err != nil {
		return err
	}
	gone, err := kube.DeleteOwnedNamespaces(ctx, c, map[string]string{kube.OwnedLabel: "true", kube.LabLabel: name, kube.ProviderLabel: Name}, deleteTimeout)
	if len(gone) > 0 {
		fmt.Fprintf(p.progress(), "Removed from the cluster of %s: namespaces %s\n", kc.Path, strings.Join(gone, ", "))
	}
	if err != nil {
		return fmt.Errorf("existing cluster %s: lab %s: %w", kc.Path, name, err)
	}
	return nil
}

// DeleteAll removes every lab of this provider from the cluster.
func (p Provider) DeleteAll() error {
	return kube.DeleteListed(p.List, p.Delete)
}

// List names the labs on the cluster.
func (p Provider) List() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kc, c, err := p.connect()
	if err != nil {
		return nil, err
	}
	nss, err := kube.OwnedNamespaces(ctx, c, map[string]string{kube.OwnedLabel: "true", kube.ProviderLabel: Name})
	if err != nil {
		return nil, fmt.Errorf("existing cluster %s: %w", kc.Path, err)
	}
	var names []string
	for _, ns := range nss {
		if n := ns.Labels[kube.LabLabel]; n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// waitSchedulable waits until the cluster has want Ready nodes that take
// pods, and returns them.
func waitSchedulable(ctx context.Context, c kubernetes.Interface, want int, timeout time.Duration) ([]kube.Node, error) {
	var nodes []kube.Node
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		var all int
		var err error
		nodes, all, err = schedulableNodes(ctx, c)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("%d nodes, %d of them Ready and schedulable", all, len(nodes))
		return len(nodes) >= want, nil
	})
	if err != nil {
		return nil, fmt.Errorf("want %d Ready nodes that take pods: %s after %s", want, last, timeout)
	}
	return nodes, nil
}

// schedulableNodes lists the Ready nodes that take ordinary pods (not
// cordoned, no NoSchedule or NoExecute taint), sorted by name: the nodes the
// suite places its pods on. all is how many nodes there are.
func schedulableNodes(ctx context.Context, c kubernetes.Interface) (nodes []kube.Node, all int, err error) {
	l, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, 0, fmt.Errorf("list nodes: %w", err)
	}
	for i := range l.Items {
		o := &l.Items[i]
		if !kube.NodeReady(o) || o.Spec.Unschedulable || slices.ContainsFunc(o.Spec.Taints, func(t corev1.Taint) bool {
			return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
		}) {
			continue
		}
		nodes = append(nodes, kube.NodeFrom(o))
	}
	slices.SortFunc(nodes, func(a, b kube.Node) int { return strings.Compare(a.Name, b.Name) })
	return nodes, len(l.Items), nil
}

// Name is the lab's name.
func (c *Cluster) Name() string { return c.name }

// Kubeconfig is the path of the kubeconfig the lab was made from.
func (c *Cluster) Kubeconfig() string { return c.kc.Path }

// REST is the client configuration of the kubeconfig.
func (c *Cluster) REST() *rest.Config { return c.kc.REST }

// Client returns the client of the kubeconfig.
func (c *Cluster) Client() (kubernetes.Interface, error) { return c.client, nil }

// Nodes are the Ready nodes that take pods, as the lab found them, sorted by
// name.
func (c *Cluster) Nodes() []kube.Node { return c.nodes }

// KernelRelease is the nodes' kernel (status.nodeInfo.kernelVersion); nodes
// on different kernels give them all, comma separated.
func (c *Cluster) KernelRelease() string {
	var ks []string
	for _, n := range c.nodes {
		if n.Kernel != "" && !slices.Contains(ks, n.Kernel) {
			ks = append(ks, n.Kernel)
		}
	}
	if len(ks) == 0 {
		return "unknown"
	}
	return strings.Join(ks, ",")
}

// Runner is how the lab runs commands, nil for the API server's exec.
func (c *Cluster) Runner() Runner { return c.runner }

// ExecPod runs argv in the first container of the pod, through the API
// server's exec (or the Runner).
func (c *Cluster) ExecPod(ctx context.Context, namespace, pod string, argv []string) (kube.ExecResult, error) {
	if c.runner != nil {
		return c.runner.ExecPod(ctx, namespace, pod, argv)
	}
	return kube.Exec(ctx, c.kc.REST, c.client, namespace, pod, "", argv)
}

// ExecNode runs argv on the node, in its network namespace: in the lab's
// hostNetwork shell pod on that node (made on first use), or through the
// Runner.
func (c *Cluster) ExecNode(ctx context.Context, node string, argv []string) (kube.ExecResult, error) {
	if c.runner != nil {
		return c.runner.ExecNode(ctx, node, argv)
	}
	if _, err := c.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err != nil {
		return kube.ExecResult{}, fmt.Errorf("node %s: %w", node, err)
	}
	return c.shell.Exec(ctx, node, argv)
}
