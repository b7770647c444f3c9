package e2e

import (
	"context"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnilab/cnilab/e2e/report"
)

// describeNodes says what runs the cluster's nodes, for the report: the
// node kind, the first node's kubelet and runtime versions, and its cgroup
// hierarchy (what /sys/fs/cgroup is, read on the node where the provider
// can run commands there).
func describeNodes(ctx context.Context) *report.NodeInfo {
	info := &report.NodeInfo{Kind: "real"}
	if env.Provider == "netns" || env.Provider == "qemu" {
		info.Kind = env.NodeKind
		if info.Kind == "" {
			info.Kind = "light"
		}
	}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		return info
	}
	ni := nodes.Items[0].Status.NodeInfo
	info.Kubelet, info.Runtime = ni.KubeletVersion, ni.ContainerRuntimeVersion
	if r, err := cluster.ExecNode(ctx, nodes.Items[0].Name, []string{"stat", "-f", "-c", "%T", "/sys/fs/cgroup"}); err == nil && r.ExitCode == 0 {
		info.Cgroup = "v1"
		if strings.TrimSpace(string(r.Stdout)) == "cgroup2fs" {
			info.Cgroup = "v2"
		}
	}
	return info
}
