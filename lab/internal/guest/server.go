package guest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/lab/internal/atomicfile"
)

// LogDir is where the guest keeps the logs of the daemons it starts.
const LogDir = "/var/log/cnilab"

// InitStatusFile is where the guest init records how boot went.
const InitStatusFile = "/run/cnilab-init.status"

// Serve answers the host's requests on conn until the host goes away or ctx
// ends. Daemons started through it outlive a Serve call: a later Serve (after
// the host reconnects) still knows them.
func Serve(ctx context.Context, conn io.ReadWriteCloser) error {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.EnableKeepAlive = false // a paused VM must not look dead
	sess, err := yamux.Server(conn, cfg)
	if err != nil {
		return fmt.Errorf("control channel: %w", err)
	}
	defer sess.Close()
	go func() {
		<-ctx.Done()
		sess.Close()
	}()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("control channel closed: %w", err)
		}
		go handle(st)
	}
}

func handle(st net.Conn) {
	defer st.Close()
	var req Request
	if err := readLine(st, &req); err != nil {
		return
	}
	if req.Op == OpDial {
		dial(st, req)
		return
	}
	_ = writeLine(st, answer(req))
}

func answer(req Request) Reply {
	switch req.Op {
	case OpPing:
		var u unix.Utsname
		_ = unix.Uname(&u)
		r := Reply{Release: string(bytes.TrimRight(u.Release[:], "\x00"))}
		if b, err := os.ReadFile(InitStatusFile); err == nil && json.Valid(b) {
			r.InitStatus = b
		}
		return r
	case OpExec:
		return execute(req)
	case OpStart:
		pid, err := daemons.start(req)
		return replyErr(Reply{Pid: pid}, err)
	case OpRestart:
		pid, err := daemons.restart(req.Name, syscall.Signal(req.Signal))
		return replyErr(Reply{Pid: pid}, err)
	case OpStop:
		return replyErr(Reply{}, daemons.stop(req.Name, syscall.Signal(req.Signal)))
	case OpResume:
		pid, err := daemons.resume(req.Name)
		return replyErr(Reply{Pid: pid}, err)
	case OpWrite:
		return replyErr(Reply{}, writeFile(req.Path, req.Data, os.FileMode(req.Mode)))
	case OpRead:
		b, err := os.ReadFile(req.Path)
		return replyErr(Reply{Data: b, NotExist: errors.Is(err, os.ErrNotExist)}, err)
	}
	return Reply{Error: fmt.Sprintf("unknown operation %q", req.Op)}
}

func replyErr(r Reply, err error) Reply {
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// command builds req.Argv, in req.Netns when set (through nsenter, which the
// guest init provides).
func command(req Request) (*exec.Cmd, error) {
	if len(req.Argv) == 0 {
		return nil, fmt.Errorf("no command")
	}
	argv := req.Argv
	if req.Netns != "" {
		if strings.ContainsAny(req.Netns, "/\x00") || req.Netns == "." || req.Netns == ".." {
			return nil, fmt.Errorf("invalid netns name %q", req.Netns)
		}
		if _, err := os.Stat(filepath.Join("/run/netns", req.Netns)); err != nil {
			return nil, fmt.Errorf("netns %s: %w", req.Netns, err)
		}
		argv = append([]string{"nsenter", "--net=" + filepath.Join("/run/netns", req.Netns), "--"}, argv...)
	}
	path, err := lookPath(argv[0], req.Env)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Env = append(os.Environ(), req.Env...)
	return cmd, nil
}

func execute(req Request) Reply {
	cmd, err := command(req)
	if err != nil {
		return Reply{Error: err.Error()}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		return Reply{Error: err.Error()}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timeout <-chan time.Time
	if req.Timeout > 0 {
		timeout = time.After(time.Duration(req.Timeout * float64(time.Second)))
	}
	select {
	case err = <-done:
	case <-timeout:
		_ = cmd.Process.Kill()
		<-done
		return Reply{Stdout: out.Bytes(), Stderr: errb.Bytes(), Error: fmt.Sprintf("%s: timed out after %.0fs", req.Argv[0], req.Timeout)}
	}
	r := Reply{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.ExitCode = ee.ExitCode()
		if r.ExitCode < 0 {
			r.ExitCode = 128 + int(ee.Sys().(syscall.WaitStatus).Signal())
		}
	} else if err != nil {
		r.Error = err.Error()
	}
	return r
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("write %q: path must be absolute", path)
	}
	if mode == 0 {
		mode = 0o644
	}
	return atomicfile.WriteFile(path, data, mode)
}

func dial(st net.Conn, req Request) {
	c, err := net.DialTimeout(req.Network, req.Address, 10*time.Second)
	if err != nil {
		_ = writeLine(st, Reply{Error: err.Error()})
		return
	}
	defer c.Close()
	if err := writeLine(st, Reply{}); err != nil {
		return
	}
	relay(st, c)
}

// relay copies both ways until either side is done.
func relay(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

// lookPath finds name in the request's PATH when it gives one, else in the
// server's.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return exec.LookPath(name)
	}
	for i := len(env) - 1; i >= 0; i-- {
		if dirs, ok := strings.CutPrefix(env[i], "PATH="); ok {
			for _, d := range filepath.SplitList(dirs) {
				p := filepath.Join(d, name)
				if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
					return p, nil
				}
			}
			return "", fmt.Errorf("%s: not found in PATH %s", name, dirs)
		}
	}
	return exec.LookPath(name)
}
