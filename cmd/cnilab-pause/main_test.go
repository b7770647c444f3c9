package main

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// childEnv makes the test binary, started as a child, exit at once (see
// TestMain): the tests need children that exit and become zombies.
const childEnv = "CNILAB_PAUSE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "exit" {
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startChild forks a child that exits immediately, without waiting for it.
func startChild(t *testing.T) int {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := syscall.ForkExec(exe, []string{exe}, &syscall.ProcAttr{
		Env: []string{childEnv + "=exit"},
	})
	if err != nil {
		t.Fatalf("fork child: %v", err)
	}
	return pid
}

// procState returns the state letter of /proc/PID/stat ("Z" for a zombie),
// or "" when the process is gone (reaped).
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+3 > len(s) {
		t.Fatalf("unexpected /proc/%d/stat: %q", pid, s)
	}
	return s[i+2 : i+3]
}

// waitState polls until pid is in the wanted state ("" = gone) or fails.
func waitState(t *testing.T, pid int, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := procState(t, pid)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d: state %q, want %q after 10s", pid, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReapable polls until the child pid has exited and can be reaped,
// without reaping it (waitid with WNOWAIT). Its /proc state says "Z" earlier,
// as soon as its main thread is gone, while its other threads may still be
// exiting and wait cannot collect it yet.
func waitReapable(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
		if err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatalf("waitid %d: %v", pid, err)
		}
		if err == nil && info.Signo == int32(unix.SIGCHLD) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d not reapable after 10s (state %q)", pid, procState(t, pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunReapsOnSIGCHLDAndStops(t *testing.T) {
	for _, stop := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(stop.String(), func(t *testing.T) {
			sigs := make(chan os.Signal, 8)
			sigs <- syscall.SIGCHLD
			sigs <- syscall.SIGHUP // not handled: ignored
			sigs <- syscall.SIGCHLD
			sigs <- stop
			sigs <- syscall.SIGCHLD // after the stop signal: never read
			reaps := 0
			var log bytes.Buffer
			if code := run(sigs, func() { reaps++ }, &log); code != 0 {
				t.Errorf("exit code %d, want 0", code)
			}
			if reaps != 2 {
				t.Errorf("reaped %d times, want 2 (once per SIGCHLD before %v)", reaps, stop)
			}
			if !strings.Contains(log.String(), stop.String()) {
				t.Errorf("log %q does not name the signal %v", log.String(), stop)
			}
		})
	}
}

func TestRunBlocksUntilStopSignal(t *testing.T) {
	sigs := make(chan os.Signal)
	done := make(chan int, 1)
	var mu sync.Mutex
	reaps := 0
	go func() {
		done <- run(sigs, func() { mu.Lock(); reaps++; mu.Unlock() }, &bytes.Buffer{})
	}()
	sigs <- syscall.SIGCHLD
	select {
	case code := <-done:
		t.Fatalf("run returned %d without a stop signal", code)
	case <-time.After(100 * time.Millisecond):
	}
	sigs <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after SIGTERM")
	}
	mu.Lock()
	defer mu.Unlock()
	if reaps != 1 {
		t.Errorf("reaped %d times, want 1", reaps)
	}
}

func TestReapAllCollectsZombies(t *testing.T) {
	if n := reapAll(); n != 0 {
		t.Logf("reaped %d leftover children first", n)
	}
	var pids []int
	for range 3 {
		pids = append(pids, startChild(t))
	}
	for _, pid := range pids {
		waitReapable(t, pid)
	}
	if n := reapAll(); n != len(pids) {
		t.Errorf("reapAll collected %d children, want %d", n, len(pids))
	}
	for _, pid := range pids {
		if s := procState(t, pid); s != "" {
			t.Errorf("child %d still exists in state %q after reapAll", pid, s)
		}
	}
	if n := reapAll(); n != 0 {
		t.Errorf("reapAll with no children collected %d, want 0", n)
	}
}

// TestPauseReapsAndExitsOnSIGTERM runs the real signal wiring: children that
// exit are reaped through SIGCHLD without any wait from the test, and a
// SIGTERM sent to the process ends pause with exit code 0.
func TestPauseReapsAndExitsOnSIGTERM(t *testing.T) {
	var log bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- pause(&log) }()

	// A reaped child proves pause listens for SIGCHLD (it subscribes before
	// its first reap), so the SIGTERM below goes to it and does not kill
	// the test binary.
	for range 3 {
		waitState(t, startChild(t), "")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pause did not return after SIGTERM")
	}
	if !strings.Contains(log.String(), "terminated") {
		t.Errorf("log %q does not name SIGTERM", log.String())
	}
}
