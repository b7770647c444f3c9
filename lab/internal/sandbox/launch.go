package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// Namespaces the init is cloned into: a node has its own mounts, PIDs,
// hostname, IPC and cgroup root; its network namespace is the one the
// launcher was started in.
const Namespaces = syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWCGROUP

// Launch runs a node sandbox to its end: it creates the node's cgroup,
// moves this process into it, starts initArgv (this binary's init command)
// in new namespaces, forwards SIGTERM and SIGINT to it, waits for it, and
// removes the cgroup with whatever it still holds. It returns the init's
// error.
func Launch(spec Spec, initArgv []string) error {
	hs, err := Hierarchies("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	cg := Cgroup{Hierarchies: hs, Path: spec.Cgroup}
	if err := cg.Create(); err != nil {
		return err
	}
	if err := cg.Join(os.Getpid()); err != nil {
		return errors.Join(err, cg.Remove(10*time.Second))
	}
	cmd := exec.Command(initArgv[0], initArgv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: Namespaces, Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return errors.Join(fmt.Errorf("node %s: start init: %w", spec.Node, err), cg.Remove(10*time.Second))
	}
	if err := os.WriteFile(spec.PidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		_ = cmd.Process.Kill()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	for waiting := true; waiting; {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case werr = <-done:
			waiting = false
		}
	}
	_ = os.Remove(spec.PidFile)
	// The init's PID namespace is gone with it; what is left in the cgroup
	// (this launcher only, unless a process escaped) is killed there.
	leave(cg)
	return errors.Join(werr, cg.Remove(10*time.Second))
}

// leave moves this process out of the node's cgroup (back to each
// hierarchy's root), so the cgroup can be removed.
func leave(cg Cgroup) {
	for _, h := range cg.Hierarchies {
		_ = os.WriteFile(h.Mount+"/cgroup.procs", []byte(strconv.Itoa(os.Getpid())), 0o644)
	}
}
