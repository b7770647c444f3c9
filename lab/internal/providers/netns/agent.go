package netns

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/cnilab/cnilab/lab/internal/cni"
	"github.com/cnilab/cnilab/lab/internal/kube"
	"github.com/cnilab/cnilab/manifests"
)

// agentDaemon names the process of a node's CNI agent.
func (c *Cluster) agentDaemon(node string) (string, error) {
	for _, n := range c.Nodes() {
		if n.Name != node {
			continue
		}
		switch c.cfg.CNI {
		case "flannel":
			return "flanneld-" + node, nil
		case "cnilab", "cnilab-vxlan":
			return "cnilab-agent-" + node, nil
		}
		return "", fmt.Errorf("CNI %s has no node agent", c.cfg.CNI)
	}
	return "", fmt.Errorf("no node %q in lab %s", node, c.cfg.Name)
}

// RestartNodeAgent stops the CNI's agent on node with sig and starts it again
// exactly as it was started (flanneld for flannel, cnilab-agent for cnilab).
//
// On real nodes the agent is the DaemonSet's pod: see restartAgentPod.
func (c *Cluster) RestartNodeAgent(node string, sig syscall.Signal) error {
	if c.cfg.Real() {
		return c.restartAgentPod(context.Background(), node, sig)
	}
	name, err := c.agentDaemon(node)
	if err != nil {
		return err
	}
	return c.backend.RestartDaemon(context.Background(), c.cfg, node, name, sig)
}

// StopNodeAgent stops the CNI's agent on node with sig and leaves it
// stopped until StartNodeAgent.
func (c *Cluster) StopNodeAgent(node string, sig syscall.Signal) error {
	if c.cfg.Real() {
		return c.stopAgentPod(context.Background(), node, sig)
	}
	name, err := c.agentDaemon(node)
	if err != nil {
		return err
	}
	if err := c.backend.StopDaemon(context.Background(), c.cfg, node, name, sig); err != nil {
		return fmt.Errorf("stop the agent on %s: %w", node, err)
	}
	return nil
}

// StartNodeAgent starts the agent StopNodeAgent stopped, exactly as it was
// started.
func (c *Cluster) StartNodeAgent(node string) error {
	if c.cfg.Real() {
		return c.startAgentPod(context.Background(), node)
	}
	name, err := c.agentDaemon(node)
	if err != nil {
		return err
	}
	if err := c.backend.ResumeDaemon(context.Background(), c.cfg, node, name); err != nil {
		return fmt.Errorf("start the agent on %s again: %w", node, err)
	}
	return nil
}

// AgentStatus returns the /v1/status document of node's cnilab agent.
func (c *Cluster) AgentStatus(ctx context.Context, node string) (map[string]any, error) {
	if c.cfg.CNI != "cnilab" && c.cfg.CNI != "cnilab-vxlan" {
		return nil, fmt.Errorf("CNI %s has no cnilab agent", c.cfg.CNI)
	}
	return cni.AgentStatus(ctx, cni.Node{Name: node, Dir: NodeDir(c.cfg, node)})
}

// AgentSocket returns the unix socket of node's cnilab agent.
func (c *Cluster) AgentSocket(node string) (string, error) {
	if c.cfg.CNI != "cnilab" && c.cfg.CNI != "cnilab-vxlan" {
		return "", fmt.Errorf("CNI %s has no cnilab agent: flows and metrics are not available", c.cfg.CNI)
	}
	if _, err := c.agentDaemon(node); err != nil {
		return "", err
	}
	return cni.AgentSocket(cni.Node{Name: node, Dir: NodeDir(c.cfg, node)}), nil
}

// agentPods says where a CNI's DaemonSet pods are: their namespace and
// label selector (manifests/charts/cnilab, manifests/charts/flannel).
func agentPods(cniName string) (namespace, selector string) {
	if cniName == "flannel" {
		return "kube-flannel", "app=flannel"
	}
	return metav1.NamespaceSystem, "app.kubernetes.io/name=cnilab-agent"
}

// restartAgentPod restarts node's CNI agent on a real node as a cluster
// operator does: it deletes the node's DaemonSet pod (at once for SIGKILL,
// with the pod's grace period otherwise) and waits until the DaemonSet's
// new pod there is Ready.
func (c *Cluster) restartAgentPod(ctx context.Context, node string, sig syscall.Signal) error {
	client, err := c.Client()
	if err != nil {
		return err
	}
	ns, sel := agentPods(c.cfg.CNI)
	// The node may be between two agent pods (a rollout, a stop just
	// undone): restart the next one.
	old, err := waitAgentPod(ctx, client, ns, sel, node, time.Minute)
	if err != nil {
		return fmt.Errorf("restart the agent on %s: %w", node, err)
	}
	if err := client.CoreV1().Pods(old.Namespace).Delete(ctx, old.Name, deleteOptions(sig)); err != nil {
		return fmt.Errorf("restart the agent on %s: delete pod %s: %w", node, old.Name, err)
	}
	var why string
	err = poll(ctx, 2*time.Minute, func() bool {
		p, err := agentPod(ctx, client, ns, sel, node)
		switch {
		case err != nil:
			why = err.Error()
		case p.UID == old.UID:
			why = "the old pod " + p.Name + " is still there"
		case !kube.PodReady(p):
			why = "the new pod " + p.Name + " is not Ready"
		default:
			return true
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("restart the agent on %s: %w: %s", node, err, why)
	}
	return nil
}

// stopAgentPod keeps the cnilab DaemonSet off node as an operator would:
// it labels the node cnilab.io/no-schedule=true, which the chart's node
// affinity excludes, and deletes the node's agent pod (at once for SIGKILL,
// with its grace period otherwise) rather than wait for the DaemonSet
// controller to. It returns once the pod is gone and the agent's socket
// answers nothing.
func (c *Cluster) stopAgentPod(ctx context.Context, node string, sig syscall.Signal) error {
	if c.cfg.CNI != "cnilab" && c.cfg.CNI != "cnilab-vxlan" {
		return fmt.Errorf("stopping %s's agent on real nodes: only cnilab's DaemonSet has the affinity that keeps it off a node", c.cfg.CNI)
	}
	client, err := c.Client()
	if err != nil {
		return err
	}
	if err := setNodeLabel(ctx, client, node, manifests.NoScheduleLabel, "true"); err != nil {
		return fmt.Errorf("stop the agent on %s: %w", node, err)
	}
	ns, sel := agentPods(c.cfg.CNI)
	if old, err := agentPod(ctx, client, ns, sel, node); err == nil {
		if err := client.CoreV1().Pods(ns).Delete(ctx, old.Name, deleteOptions(sig)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("stop the agent on %s: delete pod %s: %w", node, old.Name, err)
		}
	}
	if _, err := c.agentDaemon(node); err != nil {
		return err
	}
	agent := cni.Node{Name: node, Dir: NodeDir(c.cfg, node)}
	var why string
	err = poll(ctx, 2*time.Minute, func() bool {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel, FieldSelector: "spec.nodeName=" + node})
		switch {
		case err != nil:
			why = err.Error()
		case len(pods.Items) > 0:
			why = "pod " + pods.Items[0].Name + " is still there"
		default:
			if cni.AgentGone(ctx, agent) {
				return true
			}
			why = "the agent's socket still answers"
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("stop the agent on %s: %w: %s", node, err, why)
	}
	return nil
}

// startAgentPod lets the DaemonSet back onto node (removes the label
// stopAgentPod set) and returns once the node has an agent pod again; its
// readiness is the caller's to watch.
func (c *Cluster) startAgentPod(ctx context.Context, node string) error {
	client, err := c.Client()
	if err != nil {
		return err
	}
	if err := setNodeLabel(ctx, client, node, manifests.NoScheduleLabel, ""); err != nil {
		return fmt.Errorf("start the agent on %s again: %w", node, err)
	}
	ns, sel := agentPods(c.cfg.CNI)
	if _, err := waitAgentPod(ctx, client, ns, sel, node, 2*time.Minute); err != nil {
		return fmt.Errorf("start the agent on %s again: %w", node, err)
	}
	return nil
}

// waitAgentPod waits up to timeout for node to have a CNI DaemonSet pod
// (namespace, label selector) that is not being deleted, and returns it.
func waitAgentPod(ctx context.Context, client kubernetes.Interface, namespace, selector, node string, timeout time.Duration) (*corev1.Pod, error) {
	var pod *corev1.Pod
	var lastErr error
	if err := poll(ctx, timeout, func() bool {
		pod, lastErr = agentPod(ctx, client, namespace, selector, node)
		return lastErr == nil
	}); err != nil {
		return nil, fmt.Errorf("%w: %v", err, lastErr)
	}
	return pod, nil
}

// deleteOptions delete a pod as a signal would end its container: at once
// for SIGKILL, after the pod's grace period (SIGTERM first) otherwise.
func deleteOptions(sig syscall.Signal) metav1.DeleteOptions {
	opts := metav1.DeleteOptions{}
	if sig == syscall.SIGKILL {
		opts.GracePeriodSeconds = new(int64)
	}
	return opts
}

// setNodeLabel sets a label of node, or removes it when value is empty.
func setNodeLabel(ctx context.Context, client kubernetes.Interface, node, key, value string) error {
	var v any
	if value != "" {
		v = value
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{key: v}}})
	if err != nil {
		return err
	}
	if _, err := client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("label node %s %s=%q: %w", node, key, value, err)
	}
	return nil
}

// agentPod is the CNI DaemonSet's pod (namespace, label selector) on node.
func agentPod(ctx context.Context, client kubernetes.Interface, namespace, selector, node string) (*corev1.Pod, error) {
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector, FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil, fmt.Errorf("agent pod on %s: %w", node, err)
	}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp == nil {
			return &pods.Items[i], nil
		}
	}
	return nil, fmt.Errorf("no pod %s in %s on %s", selector, namespace, node)
}
