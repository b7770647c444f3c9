// Package realnode writes what a real lab node runs: containerd's
// configuration, the kubelet's, and the sandbox spec that starts both in the
// node's own namespaces (lab/internal/sandbox).
package realnode

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"text/template"
)

// Paths inside a real node; the sandbox binds each to the node's own
// directory on this machine.
const (
	ContainerdSocket  = "/run/containerd/containerd.sock"
	ContainerdConfig  = "/etc/containerd/config.toml"
	KubeletConfig     = "/var/lib/kubelet/config.yaml"
	KubeletKubeconfig = "/etc/kubernetes/kubelet.conf"
	CACert            = "/etc/kubernetes/pki/ca.crt"
	CNIConfDir        = "/etc/cni/net.d"
	CNIBinDir         = "/opt/cni/bin"
)

// PauseImage is the pod sandbox image, under the name the kubelet and the
// upstream e2e framework use for Kubernetes 1.37.
const PauseImage = "registry.k8s.io/pause:3.10.2"

// Node is what the configurations of one node depend on.
type Node struct {
	Name string
	IP   string
	// ToolsDir holds containerd, containerd-shim-runc-v2, runc and the
	// kubelet (this machine's path; the node shares the host's file
	// system below its own binds).
	ToolsDir string
	// ClusterDNS is the kube-dns Service address the kubelet gives pods.
	ClusterDNS string
	// CgroupV1 says the node runs on a cgroup v1 hierarchy (the kubelet
	// 1.37 refuses one unless failCgroupV1 is false).
	CgroupV1 bool
}

// Validate names the first missing field.
func (n Node) Validate() error {
	switch {
	case n.Name == "" || n.IP == "":
		return fmt.Errorf("real node: name and IP are required")
	case !filepath.IsAbs(n.ToolsDir):
		return fmt.Errorf("real node %s: tools directory %q is not absolute", n.Name, n.ToolsDir)
	case n.ClusterDNS == "":
		return fmt.Errorf("real node %s: no cluster DNS address", n.Name)
	}
	return nil
}

var containerdTmpl = template.Must(template.New("containerd").Parse(`# containerd of lab node {{.Name}}: written by cnilab.
version = 3
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "` + ContainerdSocket + `"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  # Images are imported by the lab, never pulled.
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "` + PauseImage + `"

[plugins."io.containerd.cri.v1.runtime"]
  # Containers get no lower OOM score than containerd's own: lowering one
  # needs CAP_SYS_RESOURCE, which a sandbox (or this machine) may not have.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{{.ToolsDir}}/runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["` + CNIBinDir + `"]
    conf_dir = "` + CNIConfDir + `"
`))

// ContainerdTOML is the node's containerd configuration.
func ContainerdTOML(n Node) ([]byte, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := containerdTmpl.Execute(&b, n); err != nil {
		return nil, fmt.Errorf("containerd config of %s: %w", n.Name, err)
	}
	return b.Bytes(), nil
}

var kubeletTmpl = template.Must(template.New("kubelet").Parse(`# kubelet of lab node {{.Name}}: written by cnilab.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
{{- if .CgroupV1}}
# This machine mounts cgroup v1 controllers; the kubelet 1.37 refuses them
# unless told not to.
failCgroupV1: false
{{- end}}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://` + ContainerdSocket + `
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: ` + CACert + `
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS:
  - {{.ClusterDNS}}
# No resolver of this machine reaches pods: DNS is the lab's CoreDNS only.
resolvConf: ""
failSwapOn: false
# Nodes share one disk: eviction and image GC by disk use would act on the
# machine's usage, not the node's.
evictionHard:
  memory.available: "0%"
  nodefs.available: "0%"
  imagefs.available: "0%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
localStorageCapacityIsolation: false
serializeImagePulls: false
# The lab's nodes run for minutes: report status often so bring-up is quick.
nodeStatusReportFrequency: 10s
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
`))

// KubeletYAML is the node's KubeletConfiguration.
func KubeletYAML(n Node) ([]byte, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := kubeletTmpl.Execute(&b, n); err != nil {
		return nil, fmt.Errorf("kubelet config of %s: %w", n.Name, err)
	}
	return b.Bytes(), nil
}

// KubeletArgs is the kubelet's command line.
func KubeletArgs(n Node) []string {
	return []string{filepath.Join(n.ToolsDir, "kubelet"),
		"--config=" + KubeletConfig,
		"--kubeconfig=" + KubeletKubeconfig,
		"--hostname-override=" + n.Name,
		"--node-ip=" + n.IP,
		"--v=1",
	}
}

// ContainerdArgs is containerd's command line.
func ContainerdArgs(n Node) []string {
	return []string{filepath.Join(n.ToolsDir, "containerd"), "--config=" + ContainerdConfig}
}

// PathEnv is the PATH of the node's daemons: containerd finds its shim
// there, the shim finds runc.
func PathEnv(n Node) string {
	return "PATH=" + strings.Join([]string{n.ToolsDir, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}, ":")
}
