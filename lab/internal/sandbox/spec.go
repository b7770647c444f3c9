// Package sandbox makes a lab node a sandbox in the manner of a kind node
// container, without Docker: the node's own mount, PID, UTS, IPC and cgroup
// namespaces (beside the network namespace the lab made), its own
// /var/lib/kubelet, /var/lib/containerd, /run, /etc/cni/net.d, /opt/cni/bin,
// bpffs and cgroup tree, and a PID 1 that starts and supervises the node's
// daemons (containerd, the kubelet) and reaps every orphan.
//
// A sandbox is two processes: the launcher ([Launch]), started in the node's
// network namespace, creates the node's cgroup in every hierarchy, moves
// itself there and clones the init ([Init]) into new namespaces; the init
// makes the node's mounts and runs its daemons. Stopping the init (SIGTERM)
// stops the daemons; when it exits the kernel kills whatever is left in its
// PID namespace (containers and their shims) and drops its mounts. The
// launcher then removes the cgroup.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Spec describes one node sandbox; the lab writes it as JSON and both the
// launcher and the init read it.
type Spec struct {
	// Lab and Node name the sandbox.
	Lab  string `json:"lab"`
	Node string `json:"node"`
	// Dir is the node's own directory on this machine; bind sources are
	// relative to it unless absolute.
	Dir string `json:"dir"`
	// Cgroup is the node's cgroup path below each hierarchy's root, e.g.
	// cnilab/LAB/NODE.
	Cgroup string `json:"cgroup"`
	// Binds are mounted in the node's mount namespace, in order.
	Binds []Bind `json:"binds"`
	// Daemons are started in order, each once the file its WaitFor names
	// exists, and restarted when they exit.
	Daemons []Daemon `json:"daemons"`
	// LogDir is where each daemon's log goes: LogDir/NAME-NODE.log.
	LogDir string `json:"logDir"`
	// PidFile receives the init's PID as this machine sees it (written by
	// the launcher), for exec into the node (nsenter --target PID --all).
	PidFile string `json:"pidFile"`
}

// Bind mounts Source of this machine at Target in the node.
type Bind struct {
	Source string `json:"source"`
	Target string `json:"target"`
	// File binds a single file (Target is created as an empty file).
	File bool `json:"file,omitempty"`
}

// Daemon is a long-running node process.
type Daemon struct {
	Name string   `json:"name"`
	Argv []string `json:"argv"`
	Env  []string `json:"env,omitempty"`
	// WaitFor is a path in the node that must exist before the daemon
	// starts (e.g. containerd's socket before the kubelet).
	WaitFor string `json:"waitFor,omitempty"`
}

// Validate names the first problem of a spec.
func (s Spec) Validate() error {
	switch {
	case s.Lab == "" || s.Node == "":
		return errors.New("sandbox spec: lab and node are required")
	case !filepath.IsAbs(s.Dir):
		return fmt.Errorf("sandbox spec of %s: dir %q is not absolute", s.Node, s.Dir)
	case s.Cgroup == "" || filepath.IsAbs(s.Cgroup) || strings.Contains(s.Cgroup, ".."):
		return fmt.Errorf("sandbox spec of %s: cgroup %q must be a relative path without '..'", s.Node, s.Cgroup)
	case s.LogDir == "" || s.PidFile == "":
		return fmt.Errorf("sandbox spec of %s: logDir and pidFile are required", s.Node)
	}
	for _, b := range s.Binds {
		if b.Source == "" || !filepath.IsAbs(b.Target) {
			return fmt.Errorf("sandbox spec of %s: bind %q -> %q needs a source and an absolute target", s.Node, b.Source, b.Target)
		}
	}
	for _, d := range s.Daemons {
		if d.Name == "" || len(d.Argv) == 0 {
			return fmt.Errorf("sandbox spec of %s: a daemon needs a name and a command", s.Node)
		}
	}
	return nil
}

// source is a bind's source on this machine.
func (s Spec) source(b Bind) string {
	if filepath.IsAbs(b.Source) {
		return b.Source
	}
	return filepath.Join(s.Dir, b.Source)
}

// ReadSpec reads and validates a spec file.
func ReadSpec(path string) (Spec, error) {
	var s Spec
	data, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("sandbox spec: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("sandbox spec %s: %w", path, err)
	}
	return s, s.Validate()
}
