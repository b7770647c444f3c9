package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// Client talks to one guest through its relay's unix socket; it is safe for
// concurrent use (every call is its own connection).
type Client struct {
	Socket string // the relay's socket
	Node   string // for error messages
}

// ErrNotExist is returned by ReadFile for a file the guest does not have.
var ErrNotExist = os.ErrNotExist

func (c *Client) call(ctx context.Context, req Request) (Reply, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		return Reply{}, fmt.Errorf("guest %s: control channel: %w", c.Node, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if err := writeLine(conn, req); err != nil {
		return Reply{}, fmt.Errorf("guest %s: %s: %w", c.Node, req.Op, err)
	}
	var r Reply
	if err := json.NewDecoder(conn).Decode(&r); err != nil {
		if ctx.Err() != nil {
			return Reply{}, fmt.Errorf("guest %s: %s: %w", c.Node, req.Op, ctx.Err())
		}
		return Reply{}, fmt.Errorf("guest %s: %s: no answer: %w", c.Node, req.Op, err)
	}
	return r, nil
}

func (c *Client) do(ctx context.Context, req Request) (Reply, error) {
	r, err := c.call(ctx, req)
	if err == nil && r.Error != "" {
		err = fmt.Errorf("guest %s: %s", c.Node, r.Error)
	}
	return r, err
}

// Ping returns the guest's kernel release and its init's status document.
func (c *Client) Ping(ctx context.Context) (Reply, error) { return c.do(ctx, Request{Op: OpPing}) }

// ExecResult is what a command printed and how it ended.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// Exec runs argv in the guest (in netns when set) and waits for it; a
// non-zero exit is in the result, not an error.
func (c *Client) Exec(ctx context.Context, netns string, argv []string, env ...string) (ExecResult, error) {
	req := Request{Op: OpExec, Netns: netns, Argv: argv, Env: env}
	if dl, ok := ctx.Deadline(); ok {
		req.Timeout = time.Until(dl).Seconds()
	}
	r, err := c.do(ctx, req)
	return ExecResult{Stdout: r.Stdout, Stderr: r.Stderr, ExitCode: r.ExitCode}, err
}

// Start starts a named daemon in the guest; its output goes to
// LogDir/<name>.log in the guest.
func (c *Client) Start(ctx context.Context, name, netns string, argv []string, env ...string) (int, error) {
	r, err := c.do(ctx, Request{Op: OpStart, Name: name, Netns: netns, Argv: argv, Env: env})
	return r.Pid, err
}

// Restart stops a named daemon with sig and starts it again as it was.
func (c *Client) Restart(ctx context.Context, name string, sig syscall.Signal) (int, error) {
	r, err := c.do(ctx, Request{Op: OpRestart, Name: name, Signal: int(sig)})
	return r.Pid, err
}

// Stop signals a named daemon with sig and waits for it to exit (SIGKILL
// after 10 s).
func (c *Client) Stop(ctx context.Context, name string, sig syscall.Signal) error {
	_, err := c.do(ctx, Request{Op: OpStop, Name: name, Signal: int(sig)})
	return err
}

// Resume starts a stopped daemon again exactly as it was started.
func (c *Client) Resume(ctx context.Context, name string) (int, error) {
	r, err := c.do(ctx, Request{Op: OpResume, Name: name})
	return r.Pid, err
}

// WriteFile writes a file in the guest, making its parents.
func (c *Client) WriteFile(ctx context.Context, path string, data []byte, mode os.FileMode) error {
	_, err := c.do(ctx, Request{Op: OpWrite, Path: path, Data: data, Mode: uint32(mode.Perm())})
	return err
}

// ReadFile reads a file of the guest; a missing file gives an error that
// errors.Is(err, ErrNotExist).
func (c *Client) ReadFile(ctx context.Context, path string) ([]byte, error) {
	r, err := c.call(ctx, Request{Op: OpRead, Path: path})
	if err != nil {
		return nil, err
	}
	if r.NotExist {
		return nil, fmt.Errorf("guest %s: %s: %w", c.Node, path, ErrNotExist)
	}
	if r.Error != "" {
		return nil, fmt.Errorf("guest %s: %s", c.Node, r.Error)
	}
	return r.Data, nil
}

// Dial connects to network/address inside the guest.
func (c *Client) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		return nil, fmt.Errorf("guest %s: control channel: %w", c.Node, err)
	}
	if err := writeLine(conn, Request{Op: OpDial, Network: network, Address: address}); err != nil {
		conn.Close()
		return nil, err
	}
	var r Reply
	if err := readLine(conn, &r); err != nil {
		conn.Close()
		return nil, fmt.Errorf("guest %s: dial %s: %w", c.Node, address, err)
	}
	if r.Error != "" {
		conn.Close()
		return nil, fmt.Errorf("guest %s: dial %s: %w", c.Node, address, errors.New(r.Error))
	}
	return conn, nil
}
