package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// procSys is where sysctls live; tests point it at a directory of their own.
var procSys = "/proc/sys"

// writeSysctl writes a sysctl file; tests replace it to see the writes.
var writeSysctl = func(path, value string) error { return os.WriteFile(path, []byte(value), 0o644) }

// ensureSysctl sets the sysctl name (dotted, e.g. net.ipv4.ip_forward) to
// value only if it holds something else: a container that is not privileged
// sees /proc/sys read-only, and on most nodes (kind, kubeadm) the settings
// the agent needs are already there. changed says whether it wrote.
func ensureSysctl(name, value string) (changed bool, err error) {
	p := filepath.Join(procSys, filepath.FromSlash(strings.ReplaceAll(name, ".", "/")))
	b, rerr := os.ReadFile(p)
	cur := strings.TrimSpace(string(b))
	if rerr == nil && cur == value {
		return false, nil
	}
	if err := writeSysctl(p, value); err != nil {
		if rerr != nil {
			return false, fmt.Errorf("sysctl %s: cannot read it (%v) nor set it to %s: %w", name, rerr, value, err)
		}
		return false, fmt.Errorf("sysctl %s is %s and cannot be set to %s: %w (set it on the node, or run the agent where /proc/sys is writable)",
			name, cur, value, err)
	}
	return true, nil
}
