package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Init is PID 1 of a node sandbox: it names the node, makes its mounts,
// starts its daemons and supervises them until SIGTERM or SIGINT, then
// stops them (SIGTERM, SIGKILL after grace) and returns. It must run as the
// first process of new mount, PID, UTS, IPC and cgroup namespaces (see
// [Launch]).
func Init(spec Spec, grace time.Duration) error {
	if os.Getpid() != 1 {
		return fmt.Errorf("node %s: the sandbox init must be PID 1 of its own PID namespace, not PID %d", spec.Node, os.Getpid())
	}
	// Signals and SIGCHLD are watched before anything starts, so no exit is
	// missed.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	if err := unix.Sethostname([]byte(spec.Node)); err != nil {
		return fmt.Errorf("node %s: hostname: %w", spec.Node, err)
	}
	hs, err := Hierarchies("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	// The log directory may lie below a path the node's binds hide (the
	// lab's state under /run): keep a handle on it from before.
	logDir, err := unix.Open(spec.LogDir, unix.O_DIRECTORY|unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("node %s: log directory: %w", spec.Node, err)
	}
	defer unix.Close(logDir)
	if err := mountNode(spec, hs); err != nil {
		return fmt.Errorf("node %s: %w", spec.Node, err)
	}
	s := supervisor{spec: spec, logDir: logDir, running: map[int]int{}}
	return s.run(sigs, grace)
}

// mountNode makes the node's view of the file system: nothing it mounts
// reaches this machine (the root is a slave of the host's), a /proc of its
// PID namespace, a /sys of its network namespace with its own cgroup tree
// and bpffs, and its own directories bound over the host's.
func mountNode(spec Spec, hs []Hierarchy) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make / a slave mount: %w", err)
	}
	// The host's /sys (its cgroup and bpf mounts with it) leaves the node's
	// view before the node's own sysfs takes its place.
	if err := unix.Unmount("/sys", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount the host's /sys: %w", err)
	}
	steps := []struct {
		src, target, fstype string
		flags               uintptr
		data                string
	}{
		{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"cgroup-root", "/sys/fs/cgroup", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "mode=755"},
	}
	for _, m := range steps {
		if err := unix.Mount(m.src, m.target, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	// The hierarchies again, inside the node's cgroup namespace: each shows
	// the node's cgroup as its root, as a container's cgroupns=private does.
	for _, h := range hs {
		if err := os.MkdirAll(h.Mount, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("cgroup", h.Mount, h.FSType, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, h.Options); err != nil {
			return fmt.Errorf("mount %s (%s) on %s: %w", h.FSType, h.Options, h.Mount, err)
		}
	}
	if err := unix.Mount("bpffs", "/sys/fs/bpf", "bpf", 0, "mode=700"); err != nil {
		return fmt.Errorf("mount bpffs: %w", err)
	}
	if err := bindAll(spec); err != nil {
		return err
	}
	// Mounts made from here on (containers' root file systems, volumes)
	// propagate inside the node, as kubelet and containerd expect.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("make / a shared mount: %w", err)
	}
	return nil
}

// bindAll makes every bind of the spec. Every source is opened before the
// first bind, since a bind (the node's /run) may hide the sources of later
// ones (the lab's state lives below /run); each is then bound from its open
// handle.
func bindAll(spec Spec) error {
	fds := make([]int, len(spec.Binds))
	defer func() {
		for _, fd := range fds {
			if fd > 0 {
				unix.Close(fd)
			}
		}
	}()
	for i, b := range spec.Binds {
		src := spec.source(b)
		if !b.File {
			if err := os.MkdirAll(src, 0o755); err != nil {
				return fmt.Errorf("bind %s: %w", src, err)
			}
		}
		fd, err := unix.Open(src, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("bind %s: %w", src, err)
		}
		fds[i] = fd
	}
	for i, b := range spec.Binds {
		if err := bindTarget(b.Target, b.File); err != nil {
			return err
		}
		src := fmt.Sprintf("/proc/self/fd/%d", fds[i])
		if err := unix.Mount(src, b.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", spec.source(b), b.Target, err)
		}
	}
	return nil
}

// bindTarget makes the mount point of a bind: a directory, or an empty file.
func bindTarget(target string, file bool) error {
	if !file {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("bind target %s: %w", target, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("bind target %s: %w", target, err)
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return fmt.Errorf("bind target %s: %w", target, err)
	}
	return f.Close()
}

// supervisor starts the daemons in order and restarts them when they exit;
// as PID 1 it also reaps every orphan of the node.
type supervisor struct {
	spec     Spec
	logDir   int         // O_PATH handle on spec.LogDir
	running  map[int]int // pid -> daemon index
	stopping bool
}

// restartDelay is how long a daemon that exited waits before it runs again.
const restartDelay = time.Second

func (s *supervisor) run(sigs <-chan os.Signal, grace time.Duration) error {
	restart := make(chan int, len(s.spec.Daemons))
	for i := range s.spec.Daemons {
		if err := s.start(i, sigs, restart); err != nil {
			s.stop(grace)
			return err
		}
	}
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGCHLD {
				s.reap(restart)
				continue
			}
			s.stop(grace)
			return nil
		case i := <-restart:
			if err := s.start(i, nil, restart); err != nil {
				fmt.Fprintf(os.Stderr, "sandbox %s: %v\n", s.spec.Node, err)
			}
		}
	}
}

// start waits for a daemon's WaitFor file (reaping meanwhile) and starts it.
func (s *supervisor) start(i int, sigs <-chan os.Signal, restart chan int) error {
	d := s.spec.Daemons[i]
	if d.WaitFor != "" {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if _, err := os.Stat(d.WaitFor); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("daemon %s: %s did not appear within 2m0s", d.Name, d.WaitFor)
			}
			time.Sleep(100 * time.Millisecond)
			s.reap(restart)
		}
	}
	name := d.Name + "-" + s.spec.Node + ".log"
	fd, err := unix.Openat(s.logDir, name, unix.O_CREAT|unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("daemon %s: log %s: %w", d.Name, name, err)
	}
	log := os.NewFile(uintptr(fd), name)
	defer log.Close()
	env := mergeEnv(os.Environ(), d.Env)
	p, err := os.StartProcess(d.Argv[0], d.Argv, &os.ProcAttr{Env: env, Files: []*os.File{nil, log, log},
		Sys: &syscall.SysProcAttr{Setsid: true}})
	if err != nil {
		return fmt.Errorf("daemon %s: %w", d.Name, err)
	}
	s.running[p.Pid] = i
	_ = p.Release() // reaped by reap, never by os.Process.Wait
	return nil
}

// reap collects every exited child; a daemon that exited is restarted after
// restartDelay unless the node is stopping.
func (s *supervisor) reap(restart chan int) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
		i, ok := s.running[pid]
		if !ok {
			continue
		}
		delete(s.running, pid)
		d := s.spec.Daemons[i]
		fmt.Fprintf(os.Stderr, "sandbox %s: %s (pid %d) exited: %s\n", s.spec.Node, d.Name, pid, describe(ws))
		if !s.stopping {
			time.AfterFunc(restartDelay, func() { restart <- i })
		}
	}
}

// stop sends SIGTERM to the daemons, newest first, waits up to grace for
// them, then kills every process of the node.
func (s *supervisor) stop(grace time.Duration) {
	s.stopping = true
	for pid := range s.running {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for len(s.running) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		s.reap(nil)
	}
	_ = syscall.Kill(-1, syscall.SIGKILL) // every other process of the PID namespace
	for {
		if _, err := syscall.Wait4(-1, nil, 0, nil); errors.Is(err, syscall.ECHILD) {
			return
		}
	}
}

// mergeEnv is base with every variable of over set as over says (a program
// takes the first of two equal names, so appending would not override).
func mergeEnv(base, over []string) []string {
	out := make([]string, 0, len(base)+len(over))
	names := map[string]bool{}
	for _, kv := range over {
		name, _, _ := strings.Cut(kv, "=")
		names[name] = true
	}
	for _, kv := range base {
		if name, _, _ := strings.Cut(kv, "="); !names[name] {
			out = append(out, kv)
		}
	}
	return append(out, over...)
}

func describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}
