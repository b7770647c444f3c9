package netns

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/lab/internal/kube"
)

// Cluster is a running netns lab.
type Cluster struct {
	cfg     config.Config
	backend NodeBackend
}

// Node is one lab node.
type Node struct {
	Name  string
	IP    string
	Netns string
}

// Config returns the lab's configuration.
func (c *Cluster) Config() config.Config { return c.cfg }

// Kubeconfig is the path of the admin kubeconfig (through the loopback
// port-forward).
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.cfg.Dir(), "kubeconfig") }

// Nodes lists the nodes.
func (c *Cluster) Nodes() []Node {
	var out []Node
	for i := 1; i <= c.cfg.Nodes; i++ {
		out = append(out, Node{Name: c.cfg.NodeName(i), IP: c.cfg.NodeIP(i).String(), Netns: c.cfg.NodeNetns(i)})
	}
	return out
}

// KernelRelease is the kernel the nodes run: the guests' for the qemu
// provider, the host's otherwise.
func (c *Cluster) KernelRelease() string {
	if c.cfg.QEMU != nil && c.cfg.QEMU.Release != "" {
		return c.cfg.QEMU.Release
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return strings.TrimRight(string(u.Release[:]), "\x00")
}

// Client returns a client with the admin credentials.
func (c *Cluster) Client() (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		return nil, fmt.Errorf("lab %s: kubeconfig: %w", c.cfg.Name, err)
	}
	rc.QPS, rc.Burst = 50, 100
	return kubernetes.NewForConfig(rc)
}

// ExecResult is what a command printed and how it ended.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// PodNetns finds the node of a pod and its network namespace there: its own,
// or "" (the node's) for a hostNetwork pod.
func (c *Cluster) PodNetns(ctx context.Context, namespace, name string) (node, ns string, err error) {
	client, err := c.Client()
	if err != nil {
		return "", "", err
	}
	pod, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", "", fmt.Errorf("pod %s/%s: %w", namespace, name, err)
	}
	if pod.Spec.NodeName == "" {
		return "", "", fmt.Errorf("pod %s/%s is not scheduled to a node yet", namespace, name)
	}
	if _, err := nodeIndex(c.cfg, pod.Spec.NodeName); err != nil {
		return "", "", fmt.Errorf("pod %s/%s runs on %s, which is not a node of lab %s", namespace, name, pod.Spec.NodeName, c.cfg.Name)
	}
	if pod.Spec.HostNetwork {
		return pod.Spec.NodeName, "", nil
	}
	if pod.Status.PodIP == "" {
		return "", "", fmt.Errorf("pod %s/%s has no network namespace yet (phase %s)", namespace, name, pod.Status.Phase)
	}
	return pod.Spec.NodeName, c.cfg.PodNetns(string(pod.UID)), nil
}

// ExecPod runs argv in a pod's network namespace. A non-zero exit is not an
// error; failing to run at all is.
//
// On real nodes argv runs in the pod's first container through the API
// server's exec, as kubectl exec does.
func (c *Cluster) ExecPod(ctx context.Context, namespace, name string, argv []string) (ExecResult, error) {
	if c.cfg.Real() {
		return c.execAPI(ctx, namespace, name, argv)
	}
	node, ns, err := c.PodNetns(ctx, namespace, name)
	if err != nil {
		return ExecResult{}, err
	}
	return c.backend.ExecIn(ctx, c.cfg, node, ns, argv)
}

// execAPI runs argv in a pod's first container through the API server.
func (c *Cluster) execAPI(ctx context.Context, namespace, name string, argv []string) (ExecResult, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		return ExecResult{}, fmt.Errorf("lab %s: kubeconfig: %w", c.cfg.Name, err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return ExecResult{}, err
	}
	r, err := kube.Exec(ctx, rc, client, namespace, name, "", argv)
	return ExecResult{Stdout: r.Stdout, Stderr: r.Stderr, ExitCode: r.ExitCode}, err
}

// ExecNode runs argv in a node's network namespace.
func (c *Cluster) ExecNode(ctx context.Context, node string, argv []string) (ExecResult, error) {
	if _, err := nodeIndex(c.cfg, node); err != nil {
		return ExecResult{}, err
	}
	return c.backend.ExecIn(ctx, c.cfg, node, "", argv)
}
