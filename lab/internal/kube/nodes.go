package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// Node is what the lab needs to know of a cluster node.
type Node struct {
	Name   string
	IP     string // its InternalIP (the first one; "" if it has none)
	Kernel string // status.nodeInfo.kernelVersion
	Ready  bool
}

// NodeFrom reads a Node out of the API object.
func NodeFrom(n *corev1.Node) Node {
	out := Node{Name: n.Name, Kernel: n.Status.NodeInfo.KernelVersion, Ready: NodeReady(n)}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			out.IP = a.Address
			break
		}
	}
	return out
}

// NodeReady reports the node's Ready condition.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// PodReady reports the pod's Ready condition.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ListNodes lists the cluster's nodes, sorted by name.
func ListNodes(ctx context.Context, c kubernetes.Interface) ([]Node, error) {
	l, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []Node
	for i := range l.Items {
		out = append(out, NodeFrom(&l.Items[i]))
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// WaitNodesReady waits until the cluster has at least want nodes (at least
// one when want is 0) and every node is Ready, and returns them.
func WaitNodesReady(ctx context.Context, c kubernetes.Interface, want int, timeout time.Duration) ([]Node, error) {
	want = max(want, 1)
	var nodes []Node
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		var err error
		nodes, err = ListNodes(ctx, c)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		var notReady []string
		for _, n := range nodes {
			if !n.Ready {
				notReady = append(notReady, n.Name)
			}
		}
		switch {
		case len(nodes) < want:
			last = fmt.Sprintf("%d of %d nodes registered", len(nodes), want)
		case len(notReady) > 0:
			last = "not Ready: " + strings.Join(notReady, ", ")
		default:
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("nodes not Ready after %s: %s", timeout, last)
	}
	return nodes, nil
}
