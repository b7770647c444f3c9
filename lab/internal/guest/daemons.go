package guest

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// daemonSet keeps the daemons the host started, by name, so they can be
// restarted exactly as they were started.
type daemonSet struct {
	mu sync.Mutex
	m  map[string]*daemon
}

type daemon struct {
	req  Request
	proc *os.Process
	done chan struct{}
}

var daemons = &daemonSet{m: map[string]*daemon{}}

func validName(name string) error {
	if name == "" || filepath.Base(name) != name || name == "." || name == ".." {
		return fmt.Errorf("invalid daemon name %q", name)
	}
	return nil
}

func (s *daemonSet) start(req Request) (int, error) {
	if err := validName(req.Name); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.m[req.Name]; ok && !exited(d) {
		return 0, fmt.Errorf("daemon %s already runs (pid %d)", req.Name, d.proc.Pid)
	}
	d, err := launch(req)
	if err != nil {
		return 0, err
	}
	s.m[req.Name] = d
	return d.proc.Pid, nil
}

func exited(d *daemon) bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

func launch(req Request) (*daemon, error) {
	cmd, err := command(req)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", req.Name, err)
	}
	if err := os.MkdirAll(LogDir, 0o755); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(LogDir, req.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", req.Name, err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", req.Name, err)
	}
	d := &daemon{req: req, proc: cmd.Process, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// stop signals the daemon and waits up to 10 s for it, then kills it.
func (s *daemonSet) stop(name string, sig syscall.Signal) error {
	s.mu.Lock()
	d, ok := s.m[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("no daemon %q", name)
	}
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if exited(d) {
		return nil
	}
	_ = d.proc.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.proc.Kill()
		<-d.done
	}
	return nil
}

func (s *daemonSet) restart(name string, sig syscall.Signal) (int, error) {
	if err := s.stop(name, sig); err != nil {
		return 0, err
	}
	return s.resume(name)
}

// resume starts a daemon that was stopped (or exited) again, exactly as it
// was started. It refuses while the daemon runs.
func (s *daemonSet) resume(name string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.m[name]
	if !ok {
		return 0, fmt.Errorf("no daemon %q", name)
	}
	if !exited(d) {
		return 0, fmt.Errorf("daemon %s still runs (pid %d)", name, d.proc.Pid)
	}
	nd, err := launch(d.req)
	if err != nil {
		return 0, err
	}
	s.m[name] = nd
	return nd.proc.Pid, nil
}
