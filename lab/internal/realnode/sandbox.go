package realnode

import (
	"path/filepath"

	"github.com/cnilab/cnilab/lab/internal/sandbox"
)

// nodeDirs are the node's own directories, bound over the host's: the
// runtime's and the kubelet's state, the node's /run (sockets, pod network
// namespaces), CNI configuration and plugins, logs, and cnilab's state.
var nodeDirs = []string{
	"/var/lib/kubelet", "/var/lib/containerd", "/var/lib/cnilab", "/var/lib/cni", "/var/log",
	"/run", "/etc/containerd", "/etc/kubernetes", "/etc/cni/net.d", "/opt/cni/bin",
}

// SandboxSpec is the sandbox of node n whose own files live in dir: every
// directory of nodeDirs bound to dir/<path>, a machine-id of its own, and
// containerd then the kubelet as its daemons.
func SandboxSpec(n Node, lab, dir, logDir string) sandbox.Spec {
	s := sandbox.Spec{
		Lab: lab, Node: n.Name, Dir: dir, Cgroup: CgroupPath(lab, n.Name), LogDir: logDir,
		PidFile: filepath.Join(dir, "init.pid"),
	}
	for _, d := range nodeDirs {
		s.Binds = append(s.Binds, sandbox.Bind{Source: d[1:], Target: d})
	}
	s.Binds = append(s.Binds, sandbox.Bind{Source: "etc/machine-id", Target: "/etc/machine-id", File: true})
	env := []string{PathEnv(n)}
	s.Daemons = []sandbox.Daemon{
		{Name: "containerd", Argv: ContainerdArgs(n), Env: env},
		{Name: "kubelet", Argv: KubeletArgs(n), Env: env, WaitFor: ContainerdSocket},
	}
	return s
}

// CgroupPath is node's cgroup below each hierarchy's root; LabCgroup holds
// every node of a lab.
func CgroupPath(lab, node string) string { return LabCgroup(lab) + "/" + node }

// CgroupRoot holds the cgroups of every lab's real nodes.
const CgroupRoot = "cnilab"

// LabCgroup is the cgroup of every node of lab.
func LabCgroup(lab string) string { return CgroupRoot + "/" + lab }
