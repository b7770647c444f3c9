// Package kubeproxy runs kube-proxy (iptables mode) on a lab's nodes, as a
// node process with the identity the kube-proxy DaemonSet of a stock cluster
// has (user system:kube-proxy, bound to system:node-proxier by the API
// server's bootstrap policy), so that Services work the way they do on
// nearly every real cluster.
package kubeproxy

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/cnilab/cnilab/lab/internal/cni"
)

// User is the identity kube-proxy authenticates as; the API server's
// bootstrap ClusterRoleBinding system:node-proxier grants it what
// kube-proxy reads (Services, EndpointSlices, Nodes) and the events it writes.
const User = "system:kube-proxy"

// Binary is kube-proxy's file name in the tools directory.
const Binary = "kube-proxy"

// Daemon is the name of node's kube-proxy process (logs, pid file).
func Daemon(node string) string { return "kube-proxy-" + node }

// Config renders the KubeProxyConfiguration of one node. Conntrack sysctls
// are left as the node has them (maxPerCore 0, timeouts 0), as kind does:
// nf_conntrack_max is not writable from a network namespace other than the
// machine's, and the nodes share its kernel.
func Config(node, kubeconfig, clusterCIDR string) []byte {
	return []byte(strings.Join([]string{
		"apiVersion: kubeproxy.config.k8s.io/v1alpha1",
		"kind: KubeProxyConfiguration",
		"clientConnection:",
		"  kubeconfig: " + kubeconfig,
		"hostnameOverride: " + node,
		"mode: iptables",
		"clusterCIDR: " + clusterCIDR,
		"bindAddress: 0.0.0.0",
		"metricsBindAddress: 127.0.0.1:10249",
		"healthzBindAddress: 0.0.0.0:10256",
		"conntrack:",
		"  maxPerCore: 0",
		"  tcpEstablishedTimeout: 0s",
		"  tcpCloseWaitTimeout: 0s",
		"iptables:",
		"  minSyncPeriod: 1s",
		"  syncPeriod: 30s",
		"",
	}, "\n"))
}

// Start writes every node's kube-proxy configuration and kubeconfig and
// starts kube-proxy there; it does not wait (see Synced).
func Start(ctx context.Context, env cni.Env, nodes []cni.Node) error {
	data, err := env.Kubeconfig(User)
	if err != nil {
		return fmt.Errorf("kube-proxy: %w", err)
	}
	for _, n := range nodes {
		etc := filepath.Join(n.Dir, "etc", "kube-proxy")
		kc := filepath.Join(etc, "kubeconfig")
		if err := n.Host.WriteFile(ctx, kc, data, 0o600); err != nil {
			return fmt.Errorf("kube-proxy on %s: %w", n.Name, err)
		}
		conf := filepath.Join(etc, "config.yaml")
		if err := n.Host.WriteFile(ctx, conf, Config(n.Name, kc, env.ClusterCIDR), 0o644); err != nil {
			return fmt.Errorf("kube-proxy on %s: %w", n.Name, err)
		}
		argv := []string{filepath.Join(env.ToolsDir, Binary), "--config=" + conf, "--v=2"}
		if err := n.Host.Start(ctx, Daemon(n.Name), argv, nil); err != nil {
			return fmt.Errorf("kube-proxy on %s: %w", n.Name, err)
		}
	}
	return nil
}

// Synced checks that node's kube-proxy has written its rules at least
// once: the default/kubernetes Service's chain is in the node's nat table.
// exec runs a command on the node and returns its output.
func Synced(ctx context.Context, node string, exec func(ctx context.Context, node string, argv ...string) (string, error)) error {
	out, err := exec(ctx, node, "iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES")
	if err != nil {
		return err
	}
	if !strings.Contains(out, "default/kubernetes:https") {
		return fmt.Errorf("no rule for default/kubernetes yet")
	}
	return nil
}
