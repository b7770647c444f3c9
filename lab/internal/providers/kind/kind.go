package kind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/kind/pkg/cluster"

	"github.com/cnilab/cnilab/lab/internal/kube"
	"github.com/cnilab/cnilab/lab/internal/steps"
	"github.com/cnilab/cnilab/manifests"
)

// Timeouts of the bring-up steps after kind's own.
const (
	daemonSetTimeout = 5 * time.Minute
	readyTimeout     = 5 * time.Minute
)

// ShellNamespace holds the node shell pods (hostNetwork, one per node, made
// on first use) through which commands run on nodes.
const ShellNamespace = "cnilab-lab"

// controlPlaneTaint is the taint kubeadm puts on control-plane nodes.
const controlPlaneTaint = "node-role.kubernetes.io/control-plane"

// stateFile keeps a lab's Options beside its kubeconfig.
const stateFile = "lab.json"

// Provider makes, finds and removes kind labs.
type Provider struct {
	// StateDir keeps each lab's kubeconfig and options in StateDir/NAME.
	StateDir string
	// Progress receives progress lines; nil discards them.
	Progress io.Writer
}

// Cluster is a running kind lab.
type Cluster struct {
	opts   Options
	kc     *kube.Kubeconfig
	client kubernetes.Interface
	nodes  []kube.Node
	shell  *kube.NodeShell
}

func (p Provider) progress() io.Writer {
	if p.Progress == nil {
		return io.Discard
	}
	return p.Progress
}

func (p Provider) kind() *cluster.Provider {
	return cluster.NewProvider(cluster.ProviderWithDocker(), cluster.ProviderWithLogger(logger{p.progress()}))
}

func (p Provider) dir(name string) string { return filepath.Join(p.StateDir, name) }

// KubeconfigPath is where lab name's kubeconfig is kept.
func (p Provider) KubeconfigPath(name string) string {
	return filepath.Join(p.dir(name), "kubeconfig")
}

// Create makes the kind cluster of o and brings its CNI up. When a step
// after kind's own fails, the cluster is deleted unless o.Retain.
func (p Provider) Create(ctx context.Context, o Options) (*Cluster, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	mopts, err := manifestOptions(o)
	if err != nil {
		return nil, err
	}
	objs, err := manifests.Render(mopts)
	if err != nil {
		return nil, fmt.Errorf("kind lab %s: %w", o.Name, err)
	}
	if err := DockerAvailable(ctx); err != nil {
		return nil, fmt.Errorf("kind lab %s: %w", o.Name, err)
	}
	imgs := images(o)
	if err := checkImages(ctx, imgs); err != nil {
		return nil, fmt.Errorf("kind lab %s: %w", o.Name, err)
	}
	kp := p.kind()
	name := ClusterName(o.Name)
	have, err := kp.List()
	if err != nil {
		return nil, fmt.Errorf("kind lab %s: list kind clusters: %w", o.Name, err)
	}
	if slices.Contains(have, name) {
		return nil, fmt.Errorf("kind lab %s: kind cluster %s already exists (remove it with 'cnilab lab down --provider kind --name %s')", o.Name, name, o.Name)
	}
	kubeconfig := p.KubeconfigPath(o.Name)
	if err := os.MkdirAll(p.dir(o.Name), 0o700); err != nil {
		return nil, fmt.Errorf("kind lab %s: %w", o.Name, err)
	}

	w := p.progress()
	start := time.Now()
	fmt.Fprintf(w, "Creating kind lab %q (kind cluster %s, CNI %s, %d nodes) ...\n", o.Name, name, o.CNI, o.Nodes)
	err = kp.Create(name,
		cluster.CreateWithV1Alpha4Config(ClusterConfig(o)),
		cluster.CreateWithRetain(o.Retain),
		cluster.CreateWithKubeconfigPath(kubeconfig),
		cluster.CreateWithDisplayUsage(false),
		cluster.CreateWithDisplaySalutation(false))
	if err != nil {
		if !o.Retain {
			_ = os.RemoveAll(p.dir(o.Name))
		}
		return nil, fmt.Errorf("kind lab %s: create kind cluster %s: %w", o.Name, name, err)
	}

	c := &Cluster{opts: o}
	todo := []steps.Step{
		{Name: "Loading images " + strings.Join(imgs, ", "), Run: func(ctx context.Context) error {
			ns, err := kp.ListInternalNodes(name)
			if err != nil {
				return fmt.Errorf("list nodes: %w", err)
			}
			return loadImages(ctx, ns, imgs)
		}},
		{Name: "Connecting to the API server", Run: func(context.Context) error { return c.connect(kubeconfig) }},
		{Name: "Letting pods onto the control plane", Run: func(ctx context.Context) error { return untaintControlPlane(ctx, c.client) }},
		{Name: "Installing CNI " + o.CNI, Run: func(ctx context.Context) error { return kube.Apply(ctx, c.kc.REST, objs) }},
		{Name: "Waiting for the CNI's DaemonSets", Run: func(ctx context.Context) error { return waitDaemonSets(ctx, c.client, objs) }},
		{Name: "Waiting for nodes to be Ready", Run: func(ctx context.Context) error {
			ns, err := kube.WaitNodesReady(ctx, c.client, o.Nodes, readyTimeout)
			c.nodes = ns
			return err
		}},
		{Name: "Making namespace " + ShellNamespace, Run: func(ctx context.Context) error {
			return kube.EnsureOwnedNamespace(ctx, c.client, ShellNamespace, kube.OwnerLabels(Name, o.Name))
		}},
		{Name: "Writing lab state", Run: func(context.Context) error { return p.writeState(o) }},
	}
	run := steps.Runner{Progress: w, Cleanup: func(_ steps.Step, err error) error {
		if o.Retain {
			fmt.Fprintf(w, "   keeping kind cluster %s (--retain): kubeconfig %s; remove it with 'cnilab lab down --provider kind --name %s'\n", name, kubeconfig, o.Name)
			return err
		}
		fmt.Fprintf(w, "   deleting kind cluster %s\n", name)
		if derr := p.Delete(o.Name); derr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", derr))
		}
		return err
	}}
	if err := run.Run(ctx, todo); err != nil {
		return nil, fmt.Errorf("kind lab %s: %w", o.Name, err)
	}
	fmt.Fprintf(w, "Kind lab %q is up in %.1fs; kubeconfig %s\n", o.Name, time.Since(start).Seconds(), kubeconfig)
	return c, nil
}

// connect loads the lab's kubeconfig and sets up its clients.
func (c *Cluster) connect(path string) error {
	kc, err := kube.LoadKubeconfig(path)
	if err != nil {
		return err
	}
	client, err := kc.Client()
	if err != nil {
		return err
	}
	c.kc, c.client = kc, client
	c.shell = &kube.NodeShell{REST: kc.REST, Client: client, Namespace: ShellNamespace, Image: c.opts.ProbeImage,
		Labels: kube.OwnerLabels(Name, c.opts.Name)}
	return nil
}

// untaintControlPlane removes the control-plane taint, so the suite can
// place its pods on every node as it does on the other providers (with two
// nodes, the control plane is one of the two).
func untaintControlPlane(ctx context.Context, c kubernetes.Interface) error {
	l, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: controlPlaneTaint})
	if err != nil {
		return fmt.Errorf("list control-plane nodes: %w", err)
	}
	for _, n := range l.Items {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := c.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			kept := slices.DeleteFunc(slices.Clone(cur.Spec.Taints), func(t corev1.Taint) bool { return t.Key == controlPlaneTaint })
			if len(kept) == len(cur.Spec.Taints) {
				return nil
			}
			cur.Spec.Taints = kept
			_, err = c.CoreV1().Nodes().Update(ctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			return fmt.Errorf("untaint node %s: %w", n.Name, err)
		}
	}
	return nil
}

// waitDaemonSets waits for every DaemonSet among the applied objects.
func waitDaemonSets(ctx context.Context, c kubernetes.Interface, objs []*unstructured.Unstructured) error {
	for _, u := range objs {
		if u.GetKind() != "DaemonSet" {
			continue
		}
		if err := kube.WaitDaemonSet(ctx, c, u.GetNamespace(), u.GetName(), daemonSetTimeout); err != nil {
			return err
		}
	}
	return nil
}

func (p Provider) writeState(o Options) error {
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p.dir(o.Name), stateFile), b, 0o600)
}

// Get finds kind lab name: its kind cluster must exist. The kubeconfig is
// written anew from the cluster.
func (p Provider) Get(name string) (*Cluster, error) {
	kp := p.kind()
	have, err := kp.List()
	if err != nil {
		return nil, fmt.Errorf("list kind clusters: %w", err)
	}
	if !slices.Contains(have, ClusterName(name)) {
		return nil, fmt.Errorf("no kind lab named %q (no kind cluster %s)", name, ClusterName(name))
	}
	o := Options{Name: name}
	if b, err := os.ReadFile(filepath.Join(p.dir(name), stateFile)); err == nil {
		if err := json.Unmarshal(b, &o); err != nil {
			return nil, fmt.Errorf("kind lab %s: state: %w", name, err)
		}
	}
	o = o.withDefaults()
	raw, err := kp.KubeConfig(ClusterName(name), false)
	if err != nil {
		return nil, fmt.Errorf("kind lab %s: kubeconfig: %w", name, err)
	}
	path := p.KubeconfigPath(name)
	if err := kube.WriteKubeconfig(path, []byte(raw)); err != nil {
		return nil, fmt.Errorf("kind lab %s: %w", name, err)
	}
	c := &Cluster{opts: o}
	if err := c.connect(path); err != nil {
		return nil, fmt.Errorf("kind lab %s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c.nodes, err = kube.ListNodes(ctx, c.client); err != nil {
		return nil, fmt.Errorf("kind lab %s: %w", name, err)
	}
	return c, nil
}

// Delete removes lab name's kind cluster and its state.
func (p Provider) Delete(name string) error {
	if err := p.kind().Delete(ClusterName(name), p.KubeconfigPath(name)); err != nil {
		return fmt.Errorf("delete kind cluster %s: %w", ClusterName(name), err)
	}
	if err := os.RemoveAll(p.dir(name)); err != nil {
		return fmt.Errorf("kind lab %s: %w", name, err)
	}
	return nil
}

// CollectLogs writes kind's logs of lab name's nodes (kubelet, containerd,
// pods, journal) into dir, as `kind export logs` does.
func (p Provider) CollectLogs(name, dir string) error {
	if err := p.kind().CollectLogs(ClusterName(name), dir); err != nil {
		return fmt.Errorf("kind lab %s: logs: %w", name, err)
	}
	return nil
}

// List names the kind labs: the kind clusters named cnilab-NAME.
func (p Provider) List() ([]string, error) {
	have, err := p.kind().List()
	if err != nil {
		return nil, fmt.Errorf("list kind clusters: %w", err)
	}
	var out []string
	for _, n := range have {
		if lab, ok := strings.CutPrefix(n, ClusterPrefix); ok && lab != "" {
			out = append(out, lab)
		}
	}
	slices.Sort(out)
	return out, nil
}

// DeleteAll removes every kind lab.
func (p Provider) DeleteAll() error {
	return kube.DeleteListed(p.List, p.Delete)
}

// Name is the lab's name.
func (c *Cluster) Name() string { return c.opts.Name }

// CNI is the lab's CNI.
func (c *Cluster) CNI() string { return c.opts.CNI }

// Kubeconfig is the path of the lab's admin kubeconfig.
func (c *Cluster) Kubeconfig() string { return c.kc.Path }

// REST is the client configuration of the kubeconfig.
func (c *Cluster) REST() *rest.Config { return c.kc.REST }

// Client returns the admin client.
func (c *Cluster) Client() (kubernetes.Interface, error) { return c.client, nil }

// Nodes are the cluster's nodes, sorted by name (the control plane first).
func (c *Cluster) Nodes() []kube.Node { return c.nodes }

// KernelRelease is the nodes' kernel: the Docker host's.
func (c *Cluster) KernelRelease() string {
	for _, n := range c.nodes {
		if n.Kernel != "" {
			return n.Kernel
		}
	}
	return "unknown"
}

// ExecPod runs argv in the pod's first container through the API server.
func (c *Cluster) ExecPod(ctx context.Context, namespace, pod string, argv []string) (kube.ExecResult, error) {
	return kube.Exec(ctx, c.kc.REST, c.client, namespace, pod, "", argv)
}

// ExecNode runs argv on the node, in its network namespace, through the
// node's shell pod.
func (c *Cluster) ExecNode(ctx context.Context, node string, argv []string) (kube.ExecResult, error) {
	if !slices.ContainsFunc(c.nodes, func(n kube.Node) bool { return n.Name == node }) {
		return kube.ExecResult{}, fmt.Errorf("%s is not a node of kind lab %s", node, c.opts.Name)
	}
	return c.shell.Exec(ctx, node, argv)
}
