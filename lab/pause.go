package lab

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/cnilab/cnilab/lab/internal/proc"
)

// PauseControlPlanes stops (SIGSTOP) the background processes of the named
// labs: controller managers, schedulers, node roles and CNI agents. It
// leaves running what a measurement itself needs: the pods' cnilab-probe
// servers, and the API server with etcd and its port-forward (exec finds
// pods through the API). The datapath keeps forwarding without them (routes, FDB
// entries and eBPF programs stay in the kernel), so a measurement taken
// meanwhile sees the network without the control planes' background work.
// Call resume soon: a control plane stopped for long marks its nodes not
// ready.
func PauseControlPlanes(labs ...string) (resume func() error, err error) {
	var stopped []int
	resume = func() error {
		var errs []error
		for _, pid := range stopped {
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("resume %d: %w", pid, err))
			}
		}
		return errors.Join(errs...)
	}
	for _, name := range labs {
		pids, err := proc.Tagged(name)
		if err != nil {
			return resume, err
		}
		for _, pid := range pids {
			comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if err != nil {
				continue
			}
			switch strings.TrimSpace(string(comm)) {
			case "cnilab-probe", "kube-apiserver", "etcd", "nsenter":
				continue
			}
			if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmd), "port-forward") {
				continue
			}
			if err := syscall.Kill(pid, syscall.SIGSTOP); err == nil {
				stopped = append(stopped, pid)
			}
		}
	}
	return resume, nil
}
