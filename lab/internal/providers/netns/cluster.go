package netns

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cnilab/cnilab/lab/config"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
)

// Cluster is a running netns lab.
type Cluster struct {
	cfg config.Config
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

// KernelRelease is the kernel the nodes run: the host's.
func (c *Cluster) KernelRelease() string {
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

// PodNetns finds the network namespace of a pod: its own, or its node's for a
// hostNetwork pod.
func (c *Cluster) PodNetns(ctx context.Context, namespace, name string) (string, error) {
	client, err := c.Client()
	if err != nil {
		return "", err
	}
	pod, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("pod %s/%s: %w", namespace, name, err)
	}
	if pod.Spec.NodeName == "" {
		return "", fmt.Errorf("pod %s/%s is not scheduled to a node yet", namespace, name)
	}
	if pod.Spec.HostNetwork {
		for _, n := range c.Nodes() {
			if n.Name == pod.Spec.NodeName {
				return n.Netns, nil
			}
		}
		return "", fmt.Errorf("pod %s/%s runs on %s, which is not a node of lab %s", namespace, name, pod.Spec.NodeName, c.cfg.Name)
	}
	ns := c.cfg.PodNetns(string(pod.UID))
	if !labns.Exists(ns) {
		return "", fmt.Errorf("pod %s/%s has no network namespace yet (phase %s)", namespace, name, pod.Status.Phase)
	}
	return ns, nil
}

// ExecIn runs argv in the named lab namespace with the lab's binaries first on
// PATH. A non-zero exit is not an error; failing to run at all is.
func (c *Cluster) ExecIn(ctx context.Context, ns string, argv []string) (ExecResult, error) {
	if len(argv) == 0 {
		return ExecResult{}, fmt.Errorf("exec: no command")
	}
	cmd, err := labns.Command(ns, argv[0], argv[1:]...)
	if err != nil {
		return ExecResult{}, err
	}
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	cmd.Env = append(os.Environ(), "PATH="+c.cfg.BinDir+":"+os.Getenv("PATH"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	res := ExecResult{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.ExitCode = ee.ExitCode()
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("exec in %s: %w", ns, err)
	}
	return res, nil
}

// ExecPod runs argv in a pod's network namespace.
func (c *Cluster) ExecPod(ctx context.Context, namespace, name string, argv []string) (ExecResult, error) {
	ns, err := c.PodNetns(ctx, namespace, name)
	if err != nil {
		return ExecResult{}, err
	}
	return c.ExecIn(ctx, ns, argv)
}

// ExecNode runs argv in a node's network namespace.
func (c *Cluster) ExecNode(ctx context.Context, node string, argv []string) (ExecResult, error) {
	for _, n := range c.Nodes() {
		if n.Name == node {
			return c.ExecIn(ctx, n.Netns, argv)
		}
	}
	return ExecResult{}, fmt.Errorf("no node %q in lab %s", node, c.cfg.Name)
}
