package guest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/hashicorp/yamux"
)

// Forward makes a guest socket reachable on a host unix socket.
type Forward struct {
	Listen  string // host unix socket path
	Network string // in the guest: unix or tcp
	Address string
}

// Relay holds a guest's control port (QEMU's chardev socket at Port) and
// serves Socket: every connection to Socket becomes one stream to the guest.
// Forwards are served alike, with the dial request sent by the relay.
type Relay struct {
	Port     string // QEMU chardev unix socket
	Socket   string
	Forwards []Forward
	Log      io.Writer
}

// Run serves until ctx ends. It (re)connects to the port as needed.
func (r *Relay) Run(ctx context.Context) error {
	ln, err := listenUnix(r.Socket)
	if err != nil {
		return err
	}
	defer ln.Close()
	var fls []net.Listener
	for _, f := range r.Forwards {
		l, err := listenUnix(f.Listen)
		if err != nil {
			return err
		}
		defer l.Close()
		fls = append(fls, l)
	}
	sessions := make(chan *yamux.Session)
	go r.keepSession(ctx, sessions)
	var sess *yamux.Session
	get := func() (*yamux.Session, error) {
		for sess == nil || sess.IsClosed() {
			select {
			case s := <-sessions:
				sess = s
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(30 * time.Second):
				return nil, fmt.Errorf("guest control port %s: not connected", r.Port)
			}
		}
		return sess, nil
	}
	conns := make(chan accepted)
	go accept(ln, nil, conns)
	for i, l := range fls {
		f := r.Forwards[i]
		go accept(l, &f, conns)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
		for _, l := range fls {
			l.Close()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case a := <-conns:
			s, err := get()
			if err != nil {
				fmt.Fprintf(r.logw(), "relay: %v\n", err)
				a.conn.Close()
				continue
			}
			st, err := s.OpenStream()
			if err != nil {
				fmt.Fprintf(r.logw(), "relay: open stream: %v\n", err)
				a.conn.Close()
				continue
			}
			go serveConn(a, st)
		}
	}
}

func (r *Relay) logw() io.Writer {
	if r.Log == nil {
		return io.Discard
	}
	return r.Log
}

type accepted struct {
	conn net.Conn
	fwd  *Forward
}

func accept(l net.Listener, f *Forward, out chan<- accepted) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		out <- accepted{c, f}
	}
}

func serveConn(a accepted, st net.Conn) {
	defer a.conn.Close()
	defer st.Close()
	if a.fwd != nil {
		if err := writeLine(st, Request{Op: OpDial, Network: a.fwd.Network, Address: a.fwd.Address}); err != nil {
			return
		}
		var rep Reply
		if err := readLine(st, &rep); err != nil || rep.Error != "" {
			return
		}
	}
	relay(a.conn, st)
}

// keepSession connects to the port and hands out a yamux session, again
// whenever the previous one closed.
func (r *Relay) keepSession(ctx context.Context, out chan<- *yamux.Session) {
	for ctx.Err() == nil {
		c, err := net.Dial("unix", r.Port)
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		cfg := yamux.DefaultConfig()
		cfg.LogOutput = r.logw()
		cfg.EnableKeepAlive = false
		cfg.ConnectionWriteTimeout = 60 * time.Second
		s, err := yamux.Client(c, cfg)
		if err != nil {
			c.Close()
			continue
		}
		fmt.Fprintf(r.logw(), "relay: connected to %s\n", r.Port)
		for !s.IsClosed() {
			select {
			case out <- s:
			case <-s.CloseChan():
			case <-ctx.Done():
				s.Close()
				return
			}
		}
		fmt.Fprintf(r.logw(), "relay: session to %s closed\n", r.Port)
	}
}

func listenUnix(path string) (net.Listener, error) {
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("relay: listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
