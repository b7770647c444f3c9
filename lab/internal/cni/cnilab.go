package cni

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/cnilab/cnilab/lab/internal/netns"
	"github.com/cnilab/cnilab/lab/internal/proc"
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

// BPFFSDir is where a node's agent pins its maps and links.
func BPFFSDir(n Node) string { return filepath.Join(n.Dir, "sys", "fs", "bpf") }

// Install implements Installer.
func (c Cnilab) Install(ctx context.Context, env Env, nodes []Node) error {
	if err := agentRBAC(ctx, env); err != nil {
		return err
	}
	for _, n := range nodes {
		if err := c.startAgent(env, n); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		conf := filepath.Join(n.ConfDir, "05-cnilab.conflist")
		if err := waitFile(ctx, conf, 2*time.Minute); err != nil {
			return fmt.Errorf("cnilab agent on %s: %w (log: %s)", n.Name, err, filepath.Join(env.Dir, "logs", "cnilab-agent-"+n.Name+".log"))
		}
	}
	return nil
}

func (c Cnilab) startAgent(env Env, n Node) error {
	etc := filepath.Join(n.Dir, "etc", "cnilab")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return err
	}
	kc := filepath.Join(etc, "kubeconfig")
	if err := env.Kubeconfig(kc, AgentUser); err != nil {
		return fmt.Errorf("cnilab on %s: %w", n.Name, err)
	}
	cmd, err := netns.Command(n.Netns, filepath.Join(env.BinDir, "cnilab-agent"),
		"--node-name="+n.Name,
		"--kubeconfig="+kc,
		"--routing-mode="+c.Mode,
		"--underlay-device=eth0",
		"--state-dir="+filepath.Join(n.Dir, "var", "lib", "cnilab"),
		"--bpffs="+BPFFSDir(n),
		"--socket="+AgentSocket(n),
		"--cni-conf-dir="+n.ConfDir,
		"--ipam-data-dir="+filepath.Join(n.Dir, "var", "lib", "cnilab", "ipam"),
		"--metrics-address=127.0.0.1:9962", // the node's own loopback
	)
	if err != nil {
		return err
	}
	_, err = proc.Start(proc.Spec{Lab: env.Lab, Name: "cnilab-agent-" + n.Name, Cmd: cmd,
		LogDir: filepath.Join(env.Dir, "logs"), PidDir: filepath.Join(env.Dir, "run")})
	return err
}

// agentRBAC gives the agents read access to what they act on: nodes for
// routes, and (for policy) pods, namespaces and network policies.
func agentRBAC(ctx context.Context, env Env) error {
	return bindUser(ctx, env.Client, "cnilab-agent", AgentUser, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes", "pods", "namespaces"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list", "watch"}},
	})
}

func waitFile(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not written within %s", path, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
