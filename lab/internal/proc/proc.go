// Package proc starts the lab's long-running processes detached from the
// caller, tags them so they can always be found again, and stops them.
//
// Every process the lab starts carries CNILAB_LAB=<lab name> in its
// environment; children inherit it. Finding processes by that tag, not only by
// PID files, is what lets `cnilab lab down --all` clean up after a killed run.
package proc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// TagEnv is the environment variable that marks a process as the lab's.
const TagEnv = "CNILAB_LAB"

// Spec describes a daemon to start.
type Spec struct {
	Lab    string    // lab name, stored in TagEnv
	Name   string    // daemon name: log file <LogDir>/<Name>.log, pid file <RunDir>/<Name>.pid
	Cmd    *exec.Cmd // command to start; its Env is extended with the tag
	LogDir string
	PidDir string
	Files  []*os.File // extra files passed as fd 3, 4, ...
}

// Start starts the daemon in its own session with output to its log file and
// returns its PID. The caller does not wait for it.
func Start(s Spec) (int, error) {
	if err := os.MkdirAll(s.LogDir, 0o755); err != nil {
		return 0, fmt.Errorf("start %s: %w", s.Name, err)
	}
	if err := os.MkdirAll(s.PidDir, 0o755); err != nil {
		return 0, fmt.Errorf("start %s: %w", s.Name, err)
	}
	logPath := filepath.Join(s.LogDir, s.Name+".log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("start %s: open log: %w", s.Name, err)
	}
	defer log.Close()
	cmd := s.Cmd
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, TagEnv+"="+s.Lab)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = log, log, nil
	cmd.ExtraFiles = s.Files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", s.Name, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it exits while we are still running, so it does not linger as
	// a zombie that looks alive to Alive.
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(filepath.Join(s.PidDir, s.Name+".pid"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return 0, fmt.Errorf("start %s: write pid file: %w", s.Name, err)
	}
	rec, _ := json.Marshal(record{Path: cmd.Path, Args: cmd.Args, Env: cmd.Env})
	if err := os.WriteFile(filepath.Join(s.PidDir, s.Name+".cmd"), rec, 0o600); err != nil {
		_ = cmd.Process.Kill()
		return 0, fmt.Errorf("start %s: write command file: %w", s.Name, err)
	}
	return pid, nil
}

// record is how a daemon was started, kept so it can be restarted.
type record struct {
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
}

// Restart stops the daemon name (started by Start with the same directories)
// with sig, waits for it to exit (SIGKILL after 10s), and starts it again
// exactly as before. It returns the new PID.
func Restart(lab, name, logDir, pidDir string, sig syscall.Signal) (int, error) {
	if err := Stop(name, pidDir, sig); err != nil {
		return 0, fmt.Errorf("restart: %w", err)
	}
	return StartAgain(lab, name, logDir, pidDir)
}

// Stop signals the daemon name (started by Start with pidDir) with sig and
// waits for it to exit, with SIGKILL after 10s. A daemon that is not running
// is already stopped; one that was never started is an error.
func Stop(name, pidDir string, sig syscall.Signal) error {
	pid, err := ReadPid(pidDir, name)
	if err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	if pid <= 0 || !Alive(pid) {
		return nil
	}
	_ = syscall.Kill(pid, sig)
	deadline := time.Now().Add(10 * time.Second)
	for Alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if Alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for i := 0; i < 100 && Alive(pid); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if Alive(pid) {
		return fmt.Errorf("stop %s: pid %d still runs after SIGKILL", name, pid)
	}
	return nil
}

// StartAgain starts the daemon name exactly as Start last started it with
// the same directories. It refuses while that daemon still runs.
func StartAgain(lab, name, logDir, pidDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(pidDir, name+".cmd"))
	if err != nil {
		return 0, fmt.Errorf("start %s again: %w", name, err)
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return 0, fmt.Errorf("start %s again: %w", name, err)
	}
	if len(rec.Args) == 0 {
		return 0, fmt.Errorf("start %s again: %s.cmd holds no command", name, name)
	}
	if pid, err := ReadPid(pidDir, name); err == nil && pid > 0 && Alive(pid) {
		return 0, fmt.Errorf("start %s again: it still runs (pid %d)", name, pid)
	}
	cmd := exec.Command(rec.Path, rec.Args[1:]...)
	cmd.Env = withoutTag(rec.Env)
	return Start(Spec{Lab: lab, Name: name, Cmd: cmd, LogDir: logDir, PidDir: pidDir})
}

// ReadPid reads the PID file Start wrote for name (0 if it holds no number).
func ReadPid(pidDir, name string) (int, error) {
	b, err := os.ReadFile(filepath.Join(pidDir, name+".pid"))
	if err != nil {
		return 0, err
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, nil
}

func withoutTag(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, TagEnv+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// Alive reports whether the process exists and is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Field 3 (after the parenthesised command) is the state.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// Tagged returns the PIDs of all processes whose environment carries the tag
// for lab, or any lab when lab is "".
func Tagged(lab string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	// Never the caller or its ancestors: a tagged test run (or its wrapper)
	// that cleans up its own lab must not stop itself.
	skip := ancestors()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || skip[pid] {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			v, ok := strings.CutPrefix(string(kv), TagEnv+"=")
			if ok && (lab == "" || v == lab) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids, nil
}

// StopAll sends SIGTERM to every process tagged for lab ("" = every lab), waits
// up to grace for them to exit, then SIGKILLs what is left, and repeats until
// none are found (processes may fork while being stopped).
func StopAll(lab string, grace time.Duration) error {
	for round := 0; round < 5; round++ {
		pids, err := Tagged(lab)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
		deadline := time.Now().Add(grace)
		for time.Now().Before(deadline) && anyAlive(pids) {
			time.Sleep(50 * time.Millisecond)
		}
		for _, pid := range pids {
			if Alive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		for i := 0; i < 40 && anyAlive(pids); i++ {
			time.Sleep(50 * time.Millisecond)
		}
	}
	pids, err := Tagged(lab)
	if err != nil {
		return err
	}
	if len(pids) > 0 {
		return errors.New("stop lab processes: still running: " + fmt.Sprint(pids))
	}
	return nil
}

func anyAlive(pids []int) bool {
	for _, p := range pids {
		if Alive(p) {
			return true
		}
	}
	return false
}

// ancestors returns the caller's PID and those of its parents.
func ancestors() map[int]bool {
	out := map[int]bool{}
	for pid := os.Getpid(); pid > 1 && !out[pid]; {
		out[pid] = true
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			break
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			break
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			break
		}
		pid, _ = strconv.Atoi(f[1])
	}
	return out
}
