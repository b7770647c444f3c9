package netns

import (
	"fmt"
	"os/exec"
)

// Command returns a command that runs name with args inside the named network
// namespace, and only the network namespace: mounts, PID and the file system
// stay the caller's, as for a pod sandbox that shares the host file system.
func Command(ns string, name string, args ...string) (*exec.Cmd, error) {
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return nil, fmt.Errorf("run %s in netns %s: nsenter (util-linux) not found: %w", name, ns, err)
	}
	full := append([]string{"--net=" + Path(ns), "--", name}, args...)
	return exec.Command(nsenter, full...), nil
}
