package cni

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/cnilab/cnilab/datapath/api"
)

// Cnilab installs cnilab's own datapath: one cnilab-agent per node, which
// loads the eBPF programs, and writes the node's CNI configuration (the
// cnilab-cni plugin) once it is ready.
type Cnilab struct {
	Mode string // native or vxlan
}

// AgentUser is the identity the agents authenticate as.
const AgentUser = "cnilab:agent"

// Name implements Installer.
func (c Cnilab) Name() string {
	if c.Mode == "vxlan" {
		return "cnilab-vxlan"
	}
	return "cnilab"
}

// Binaries implements Installer.
func (Cnilab) Binaries(env Env) []string {
	return []string{
		filepath.Join(env.BinDir, "cnilab-agent"),
		filepath.Join(env.BinDir, "cnilab-cni"),
		filepath.Join(env.CNIBinDir, "loopback"),
	}
}

// AgentSocket is where a node's agent serves its API.
func AgentSocket(n Node) string { return filepath.Join(n.RunDir(), "cnilab", "agent.sock") }

// AgentStatus is the /v1/status document of node n's cnilab agent.
func AgentStatus(ctx context.Context, n Node) (map[string]any, error) {
	var st map[string]any
	if err := api.NewClient(AgentSocket(n)).Status(ctx, &st); err != nil {
		return nil, err
	}
	return st, nil
}

// AgentGone says whether nothing answers on node n's agent socket.
func AgentGone(ctx context.Context, n Node) bool {
	_, _, err := api.NewClient(AgentSocket(n)).Healthz(ctx)
	return errors.Is(err, api.ErrAgentUnreachable)
}

// BPFFSDir is where a node's agent pins its maps and links.
func BPFFSDir(n Node) string { return filepath.Join(n.Dir, "sys", "fs", "bpf") }

// Install implements Installer.
func (c Cnilab) Install(ctx context.Context, env Env, nodes []Node) error {
	if err := agentRBAC(ctx, env); err != nil {
		return err
	}
	for _, n := range nodes {
		if err := c.startAgent(ctx, env, n); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		conf := filepath.Join(n.ConfDir, "05-cnilab.conflist")
		if err := waitFile(ctx, n.Host, conf, 3*time.Minute); err != nil {
			return fmt.Errorf("cnilab agent on %s: %w (log: %s)", n.Name, err, filepath.Join(n.LogDir, "cnilab-agent-"+n.Name+".log"))
		}
	}
	return nil
}

func (c Cnilab) startAgent(ctx context.Context, env Env, n Node) error {
	kc := filepath.Join(n.Dir, "etc", "cnilab", "kubeconfig")
	data, err := env.Kubeconfig(AgentUser)
	if err != nil {
		return fmt.Errorf("cnilab on %s: %w", n.Name, err)
	}
	if err := n.Host.WriteFile(ctx, kc, data, 0o600); err != nil {
		return fmt.Errorf("cnilab on %s: %w", n.Name, err)
	}
	return n.Host.Start(ctx, "cnilab-agent-"+n.Name, []string{filepath.Join(env.BinDir, "cnilab-agent"),
		"--node-name=" + n.Name,
		"--kubeconfig=" + kc,
		"--routing-mode=" + c.Mode,
		"--underlay-device=eth0",
		"--service-cidr=" + env.ServiceCIDR,
		"--state-dir=" + filepath.Join(n.Dir, "var", "lib", "cnilab"),
		"--bpffs=" + BPFFSDir(n),
		"--socket=" + AgentSocket(n),
		"--cni-conf-dir=" + n.ConfDir,
		"--ipam-data-dir=" + filepath.Join(n.Dir, "var", "lib", "cnilab", "ipam"),
		"--metrics-address=127.0.0.1:9962", // the node's own loopback
	}, nil)
}

// agentRBAC gives the agents read access to what they act on: nodes for
// routes, and (for policy) pods, namespaces and network policies; and the
// right to patch Node status, where each agent publishes its own status
// (annotation cnilab.io/agent-status, read by `cnilab status`).
func agentRBAC(ctx context.Context, env Env) error {
	return bindUser(ctx, env.Client, labAgentRBAC, AgentUser, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes", "pods", "namespaces"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
	})
}

func waitFile(ctx context.Context, h NodeHost, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := h.ReadFile(ctx, path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not written within %s", path, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
