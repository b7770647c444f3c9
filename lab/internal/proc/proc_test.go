package proc

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartTagStop(t *testing.T) {
	lab := fmt.Sprintf("proctest-%d", os.Getpid())
	dir := t.TempDir()
	// A shell that starts a child: StopAll must find both by their tag.
	pid, err := Start(Spec{Lab: lab, Name: "sleeper", Cmd: exec.Command("sh", "-c", "sleep 60 & sleep 60; wait"), LogDir: dir, PidDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !Alive(pid) {
		t.Fatal("started process is not alive")
	}
	var tagged []int
	for i := 0; i < 50; i++ {
		if tagged, _ = Tagged(lab); len(tagged) >= 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(tagged) < 3 {
		t.Fatalf("want the shell and its two children tagged, found %v", tagged)
	}
	if other, _ := Tagged(lab + "-other"); len(other) != 0 {
		t.Fatalf("another lab's tag matched: %v", other)
	}
	if err := StopAll(lab, time.Second); err != nil {
		t.Fatal(err)
	}
	if left, _ := Tagged(lab); len(left) != 0 {
		t.Fatalf("processes left after StopAll: %v", left)
	}
	if _, err := os.Stat(dir + "/sleeper.pid"); err != nil {
		t.Fatalf("no pid file: %v", err)
	}
}

func TestRestartStartsTheSameCommand(t *testing.T) {
	lab := fmt.Sprintf("restarttest-%d", os.Getpid())
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", "echo started $MARK; exec sleep 60")
	cmd.Env = append(os.Environ(), "MARK=m1")
	pid, err := Start(Spec{Lab: lab, Name: "d", Cmd: cmd, LogDir: dir, PidDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = StopAll(lab, time.Second) })
	for i := 0; i < 100; i++ {
		if b, _ := os.ReadFile(dir + "/d.log"); strings.Contains(string(b), "started") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	pid2, err := Restart(lab, "d", dir, dir, syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}
	if pid2 == pid || Alive(pid) || !Alive(pid2) {
		t.Fatalf("old pid %d alive=%v, new pid %d alive=%v", pid, Alive(pid), pid2, Alive(pid2))
	}
	var log []byte
	for i := 0; i < 100 && strings.Count(string(log), "started m1") < 2; i++ {
		time.Sleep(20 * time.Millisecond)
		log, _ = os.ReadFile(dir + "/d.log")
	}
	if strings.Count(string(log), "started m1") != 2 {
		t.Fatalf("the restarted command differs; log:\n%s", log)
	}
	if tagged, _ := Tagged(lab); len(tagged) != 1 {
		t.Fatalf("want exactly the restarted process tagged, got %v", tagged)
	}
}

func TestStopThenStartAgain(t *testing.T) {
	lab := fmt.Sprintf("stoptest-%d", os.Getpid())
	dir := t.TempDir()
	if err := Stop("never", dir, syscall.SIGTERM); err == nil {
		t.Fatal("stopping a daemon that was never started: want an error")
	}
	pid, err := Start(Spec{Lab: lab, Name: "d", Cmd: exec.Command("sleep", "60"), LogDir: dir, PidDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = StopAll(lab, time.Second) })
	if _, err := StartAgain(lab, "d", dir, dir); err == nil || !strings.Contains(err.Error(), "still runs") {
		t.Fatalf("starting a running daemon again: want a 'still runs' error, got %v", err)
	}
	if err := Stop("d", dir, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if Alive(pid) {
		t.Fatalf("pid %d alive after Stop", pid)
	}
	if err := Stop("d", dir, syscall.SIGTERM); err != nil {
		t.Fatalf("stopping a stopped daemon: %v", err)
	}
	if tagged, _ := Tagged(lab); len(tagged) != 0 {
		t.Fatalf("processes tagged after Stop: %v", tagged)
	}
	pid2, err := StartAgain(lab, "d", dir, dir)
	if err != nil {
		t.Fatal(err)
	}
	if pid2 == pid || !Alive(pid2) {
		t.Fatalf("StartAgain: pid %d (old %d) alive=%v", pid2, pid, Alive(pid2))
	}
}
