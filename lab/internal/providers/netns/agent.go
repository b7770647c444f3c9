package netns

import (
	"context"
	"fmt"
	"syscall"

	"github.com/cnilab/cnilab/datapath/api"
	"github.com/cnilab/cnilab/lab/internal/cni"
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
func (c *Cluster) RestartNodeAgent(node string, sig syscall.Signal) error {
	name, err := c.agentDaemon(node)
	if err != nil {
		return err
	}
	return c.backend.RestartDaemon(context.Background(), c.cfg, node, name, sig)
}

// StopNodeAgent stops the CNI's agent on node with sig and leaves it
// stopped until StartNodeAgent.
func (c *Cluster) StopNodeAgent(node string, sig syscall.Signal) error {
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
	n := cni.Node{Name: node, Dir: NodeDir(c.cfg, node)}
	var st map[string]any
	if err := api.NewClient(cni.AgentSocket(n)).Status(ctx, &st); err != nil {
		return nil, err
	}
	return st, nil
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
