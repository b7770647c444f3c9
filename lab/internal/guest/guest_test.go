package guest

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startPair serves the guest side on a fake "QEMU port" and runs a relay in
// front of it, as the qemu provider does on the host.
func startPair(t *testing.T, fwd ...Forward) *Client {
	t.Helper()
	dir := t.TempDir()
	port := filepath.Join(dir, "port.sock")
	ln, err := net.Listen("unix", port)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = Serve(ctx, c)
		}
	}()
	r := &Relay{Port: port, Socket: filepath.Join(dir, "ctl.sock"), Forwards: fwd}
	go r.Run(ctx)
	c := &Client{Socket: r.Socket, Node: "test"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.Ping(ctx); err == nil {
			return c
		} else if time.Now().After(deadline) {
			t.Fatalf("relay never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExecReadWrite(t *testing.T) {
	c := startPair(t)
	ctx := context.Background()
	r, err := c.Exec(ctx, "", []string{"sh", "-c", "echo out; echo err >&2; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" || r.ExitCode != 3 {
		t.Fatalf("exec: %+v", r)
	}
	if _, err := c.Exec(ctx, "", []string{"/no/such/binary"}); err == nil {
		t.Fatal("exec of a missing binary gave no error")
	}
	tctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Exec(tctx, "", []string{"sleep", "30"}); err == nil {
		t.Fatal("exec past its deadline gave no error")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("deadline not honoured: %s", time.Since(start))
	}
	p := filepath.Join(t.TempDir(), "a", "b", "file")
	if err := c.WriteFile(ctx, p, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := c.ReadFile(ctx, p)
	if err != nil || string(b) != "hello" {
		t.Fatalf("read back %q, %v", b, err)
	}
	if _, err := c.ReadFile(ctx, p+".missing"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if err := c.WriteFile(ctx, "relative", nil, 0); err == nil {
		t.Fatal("relative path accepted")
	}
	if _, err := c.Exec(ctx, "../x", []string{"true"}); err == nil {
		t.Fatal("bad netns name accepted")
	}
}

func TestDaemonRestartAndDial(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "svc.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Write([]byte(strings.ToUpper(line)))
				c.Close()
			}()
		}
	}()
	fwd := Forward{Listen: filepath.Join(t.TempDir(), "fwd.sock"), Network: "unix", Address: sock}
	c := startPair(t, fwd)
	ctx := context.Background()
	name := "sleeper-" + strings.ReplaceAll(t.Name(), "/", "-")
	pid1, err := c.Start(ctx, name, "", []string{"sleep", "60"})
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid1, syscall.SIGKILL)
	if _, err := c.Start(ctx, name, "", []string{"sleep", "60"}); err == nil {
		t.Fatal("a second daemon of the same name was started")
	}
	pid2, err := c.Restart(ctx, name, syscall.SIGKILL)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid2, syscall.SIGKILL)
	if pid2 == pid1 || syscall.Kill(pid1, 0) == nil {
		t.Fatalf("restart did not replace pid %d (now %d)", pid1, pid2)
	}
	if _, err := c.Resume(ctx, name); err == nil {
		t.Fatal("resume of a running daemon accepted")
	}
	if err := c.Stop(ctx, name, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(pid2, 0) == nil {
		t.Fatalf("pid %d runs after stop", pid2)
	}
	pid3, err := c.Resume(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid3, syscall.SIGKILL)
	if pid3 == pid2 || syscall.Kill(pid3, 0) != nil {
		t.Fatalf("resume: pid %d (stopped %d)", pid3, pid2)
	}
	if _, err := c.Resume(ctx, "never-started"); err == nil {
		t.Fatal("resume of an unknown daemon accepted")
	}
	for _, conn := range []func() (net.Conn, error){
		func() (net.Conn, error) { return c.Dial(ctx, "unix", sock) },
		func() (net.Conn, error) { return net.Dial("unix", fwd.Listen) },
	} {
		cn, err := conn()
		if err != nil {
			t.Fatal(err)
		}
		cn.Write([]byte("ping\n"))
		got, _ := bufio.NewReader(cn).ReadString('\n')
		cn.Close()
		if got != "PING\n" {
			t.Fatalf("relayed answer %q", got)
		}
	}
	if _, err := c.Dial(ctx, "unix", sock+".none"); err == nil {
		t.Fatal("dial of a missing socket gave no error")
	}
	_ = os.Remove(fwd.Listen)
}
