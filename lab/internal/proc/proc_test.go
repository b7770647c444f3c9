package proc

import (
	"fmt"
	"os"
	"os/exec"
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
