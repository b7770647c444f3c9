package cni

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
)

// Flannel is the baseline: the real flanneld with --kube-subnet-mgr and the
// vxlan backend, as the upstream kube-flannel manifest runs it, and the
// bridge + host-local + portmap delegation flannel's CNI plugin would build
// from subnet.env.
type Flannel struct{}

// FlannelUser is the identity flanneld authenticates as; it is bound to the
// same ClusterRole upstream's kube-flannel manifest gives its ServiceAccount.
const FlannelUser = "cnilab:flannel"

// Name implements Installer.
func (Flannel) Name() string { return "flannel" }

// Binaries implements Installer.
func (Flannel) Binaries(env Env) []string {
	out := []string{filepath.Join(env.ToolsDir, "flanneld")}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		out = append(out, filepath.Join(env.CNIBinDir, p))
	}
	return out
}

// Install implements Installer.
func (f Flannel) Install(ctx context.Context, env Env, nodes []Node) error {
	if err := flannelRBAC(ctx, env); err != nil {
		return err
	}
	netConf, err := json.Marshal(map[string]any{"Network": env.ClusterCIDR, "Backend": map[string]string{"Type": "vxlan"}})
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if err := startFlanneld(ctx, env, n, netConf); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		subnetFile := filepath.Join(n.RunDir(), "flannel", "subnet.env")
		senv, err := waitSubnetEnv(ctx, n.Host, subnetFile, 3*time.Minute)
		if err != nil {
			return fmt.Errorf("flannel on %s: %w (log: %s)", n.Name, err, filepath.Join(n.LogDir, "flanneld-"+n.Name+".log"))
		}
		conf, err := FlannelConflist(senv, filepath.Join(n.Dir, "var", "lib", "cni", "networks"))
		if err != nil {
			return fmt.Errorf("flannel on %s: %w", n.Name, err)
		}
		if err := n.Host.WriteFile(ctx, filepath.Join(n.ConfDir, "10-flannel.conflist"), conf, 0o644); err != nil {
			return fmt.Errorf("flannel on %s: %w", n.Name, err)
		}
	}
	return nil
}

func startFlanneld(ctx context.Context, env Env, n Node, netConf []byte) error {
	etc := filepath.Join(n.Dir, "etc", "kube-flannel")
	netConfPath := filepath.Join(etc, "net-conf.json")
	if err := n.Host.WriteFile(ctx, netConfPath, netConf, 0o644); err != nil {
		return fmt.Errorf("flannel on %s: %w", n.Name, err)
	}
	kc := filepath.Join(etc, "kubeconfig")
	data, err := env.Kubeconfig(FlannelUser)
	if err != nil {
		return fmt.Errorf("flannel on %s: %w", n.Name, err)
	}
	if err := n.Host.WriteFile(ctx, kc, data, 0o600); err != nil {
		return fmt.Errorf("flannel on %s: %w", n.Name, err)
	}
	// The flags of upstream kube-flannel.yml, with every path made the node's own.
	argv := []string{filepath.Join(env.ToolsDir, "flanneld"),
		"--kube-subnet-mgr",
		"--kubeconfig-file=" + kc,
		"--net-config-path=" + netConfPath,
		"--subnet-file=" + filepath.Join(n.RunDir(), "flannel", "subnet.env"),
		"--iface=eth0",
	}
	if !env.NoIPMasq {
		argv = append(argv, "--ip-masq")
	}
	return n.Host.Start(ctx, "flanneld-"+n.Name, argv,
		[]string{"NODE_NAME=" + n.Name, "POD_NAME=kube-flannel-" + n.Name, "POD_NAMESPACE=kube-flannel"})
}

// flannelRBAC is upstream's ClusterRole "flannel" bound to FlannelUser.
func flannelRBAC(ctx context.Context, env Env) error {
	return bindUser(ctx, env.Client, labFlannelRBAC, FlannelUser, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
	})
}

// SubnetEnv is flanneld's subnet file.
type SubnetEnv struct {
	Network string // FLANNEL_NETWORK
	Subnet  string // FLANNEL_SUBNET, the node's gateway address with its prefix
	MTU     int    // FLANNEL_MTU
	IPMasq  bool   // FLANNEL_IPMASQ
}

// ParseSubnetEnv reads the KEY=VALUE lines flanneld writes.
func ParseSubnetEnv(s string) (SubnetEnv, error) {
	var e SubnetEnv
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		switch k {
		case "FLANNEL_NETWORK":
			e.Network = v
		case "FLANNEL_SUBNET":
			e.Subnet = v
		case "FLANNEL_MTU":
			mtu, err := strconv.Atoi(v)
			if err != nil {
				return e, fmt.Errorf("subnet.env: FLANNEL_MTU %q: %w", v, err)
			}
			e.MTU = mtu
		case "FLANNEL_IPMASQ":
			e.IPMasq = v == "true"
		}
	}
	if e.Network == "" || e.Subnet == "" || e.MTU == 0 {
		return e, fmt.Errorf("subnet.env: FLANNEL_NETWORK, FLANNEL_SUBNET and FLANNEL_MTU are required")
	}
	return e, nil
}

// FlannelConflist is the configuration flannel's CNI plugin delegates to the
// bridge plugin for a node with subnet file e: a cni0 bridge that is the pods'
// gateway and default gateway, hairpin mode, the flannel MTU, masquerading left
// to flanneld when it does it, and host-local IPAM over the node's subnet with
// a route to the whole flannel network.
func FlannelConflist(e SubnetEnv, ipamDataDir string) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "cbr0",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "cni0", "isGateway": true, "isDefaultGateway": true,
				"hairpinMode": true, "ipMasq": !e.IPMasq, "mtu": e.MTU,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": subnetOf(e.Subnet)}}},
					"routes":  []map[string]string{{"dst": e.Network}},
					"dataDir": ipamDataDir,
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// subnetOf turns "10.244.1.1/24" into "10.244.1.0/24".
func subnetOf(gw string) string {
	ip, prefix, ok := strings.Cut(gw, "/")
	if !ok {
		return gw
	}
	parts := strings.Split(ip, ".")
	if len(parts) != 4 {
		return gw
	}
	bits, err := strconv.Atoi(prefix)
	if err != nil || bits < 0 || bits > 32 {
		return gw
	}
	var v uint32
	for _, p := range parts {
		n, _ := strconv.Atoi(p)
		v = v<<8 | uint32(n)
	}
	v &= ^uint32(0) << (32 - bits)
	return fmt.Sprintf("%d.%d.%d.%d/%d", v>>24, v>>16&255, v>>8&255, v&255, bits)
}

func waitSubnetEnv(ctx context.Context, h NodeHost, path string, timeout time.Duration) (SubnetEnv, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, err := h.ReadFile(ctx, path)
		if err == nil {
			if e, perr := ParseSubnetEnv(string(b)); perr == nil {
				return e, nil
			}
		}
		if time.Now().After(deadline) {
			return SubnetEnv{}, fmt.Errorf("flanneld wrote no %s within %s", path, timeout)
		}
		select {
		case <-ctx.Done():
			return SubnetEnv{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
