package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// ServeConfig says what a probe server answers and where.
type ServeConfig struct {
	// Name is the reply; empty means the hostname.
	Name string
	// Address is the IP to listen on; empty means all addresses.
	Address string
	// TCP, UDP and SCTP are the ports to listen on; port 0 picks a free port
	// (see [Server.Endpoints]).
	TCP, UDP, SCTP []int
}

// Endpoint is one open listener of a [Server].
type Endpoint struct {
	Protocol Protocol
	// Addr is the local address, host:port.
	Addr string
}

// String returns "proto host:port".
func (e Endpoint) String() string { return string(e.Protocol) + " " + e.Addr }

// Server is a probe server with its listeners open.
type Server struct {
	reply     []byte // the UDP reply
	line      []byte // the TCP and SCTP reply: reply and a newline
	endpoints []Endpoint
	tcp       []net.Listener
	udp       []net.PacketConn
	sctp      []*sctpListener
	replies   sync.WaitGroup // goroutines writing stream replies
	closeOnce sync.Once
	closed    chan struct{}
	doneOnce  sync.Once
	done      context.Context
}

// Serve listens as cfg says and answers until ctx is done, then closes the
// listeners and returns nil. It returns an error naming the protocol and port
// of the first listener that fails to open, e.g.
// "listen sctp :80: protocol not supported by this kernel".
func Serve(ctx context.Context, cfg ServeConfig) error {
	s, err := Listen(cfg)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}

// Listen opens every listener of cfg. If one fails, those already open are
// closed and the error names the protocol and port that failed.
func Listen(cfg ServeConfig) (*Server, error) {
	name := cfg.Name
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("default name: %w", err)
		}
		name = h
	}
	if len(cfg.TCP)+len(cfg.UDP)+len(cfg.SCTP) == 0 {
		return nil, errors.New("no ports to listen on")
	}
	s := &Server{reply: []byte(name), line: []byte(name + "\n"), closed: make(chan struct{})}
	if err := s.open(cfg); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) open(cfg ServeConfig) error {
	for _, l := range []struct {
		p     Protocol
		ports []int
	}{{TCP, cfg.TCP}, {UDP, cfg.UDP}, {SCTP, cfg.SCTP}} {
		for _, port := range l.ports {
			addr := net.JoinHostPort(cfg.Address, strconv.Itoa(port))
			if port < 0 || port > 65535 {
				return fmt.Errorf("listen %s %s: port out of range", l.p, addr)
			}
			if err := s.listen(l.p, cfg.Address, port); err != nil {
				return opError("listen", l.p, addr, err)
			}
		}
	}
	return nil
}

func (s *Server) listen(p Protocol, address string, port int) error {
	addr := net.JoinHostPort(address, strconv.Itoa(port))
	switch p {
	case TCP:
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		s.tcp = append(s.tcp, l)
		s.endpoints = append(s.endpoints, Endpoint{TCP, l.Addr().String()})
	case UDP:
		if address != "" {
			return s.listenUDP("udp", addr)
		}
		// One socket per family, so each can answer from the address a
		// request was sent to (see serveUDP); IPv6 is optional.
		if err := s.listenUDP("udp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port))); err != nil {
			return err
		}
		if port == 0 {
			port = s.udp[len(s.udp)-1].LocalAddr().(*net.UDPAddr).Port
		}
		_ = s.listenUDP("udp6", net.JoinHostPort("::", strconv.Itoa(port)))
	case SCTP:
		l, err := listenSCTP(address, port)
		if err != nil {
			return err
		}
		s.sctp = append(s.sctp, l)
		s.endpoints = append(s.endpoints, Endpoint{SCTP, l.addr})
	}
	return nil
}

// Endpoints lists the open listeners, in the order TCP, UDP, SCTP.
func (s *Server) Endpoints() []Endpoint { return append([]Endpoint(nil), s.endpoints...) }

// Serve answers until ctx is done or Close is called, then closes the
// listeners, waits for its goroutines and returns nil.
func (s *Server) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, l := range s.tcp {
		wg.Go(func() { s.acceptLoop(func() error { return s.serveTCP(l) }) })
	}
	for _, c := range s.udp {
		wg.Go(func() { s.acceptLoop(func() error { return s.serveUDP(c) }) })
	}
	for _, l := range s.sctp {
		wg.Go(func() { s.acceptLoop(func() error { return s.serveSCTP(l) }) })
	}
	select {
	case <-ctx.Done():
	case <-s.closed:
	}
	s.Close()
	wg.Wait()
	s.replies.Wait()
	return nil
}

// Close closes the listeners; a running Serve returns.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		for _, l := range s.tcp {
			l.Close()
		}
		for _, c := range s.udp {
			c.Close()
		}
		for _, l := range s.sctp {
			l.Close()
		}
	})
	return nil
}

// acceptLoop calls one until the server closes, pausing after errors such as
// running out of descriptors.
func (s *Server) acceptLoop(one func() error) {
	for {
		err := one()
		select {
		case <-s.closed:
			return
		default:
		}
		if err != nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func (s *Server) serveTCP(l net.Listener) error {
	c, err := l.Accept()
	if err != nil {
		return err
	}
	s.replies.Go(func() { s.echo(c) })
	return nil
}

// echo greets a TCP client with the server's name, then echoes every line it
// sends (what `cnilab-probe hold` uses to watch one long-lived connection)
// until the client closes, goes idle for holdIdle, or the server closes.
func (s *Server) echo(c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(s.closedCtx(), func() { c.Close() })
	defer stop()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(s.line); err != nil {
		return
	}
	r := bufio.NewReader(io.LimitReader(c, 1<<20))
	for first := true; ; first = false {
		_ = c.SetReadDeadline(time.Now().Add(holdIdle))
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		if first && r.Buffered() == 0 && serveBench(c, string(line)) {
			return
		}
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(line); err != nil {
			return
		}
	}
}

// holdIdle ends an echo connection the client stopped using.
const holdIdle = 30 * time.Second

// closedCtx is done once the server is closed.
func (s *Server) closedCtx() context.Context {
	s.doneOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.done = ctx
		go func() { <-s.closed; cancel() }()
	})
	return s.done
}

func (s *Server) listenUDP(network, addr string) error {
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		return err
	}
	s.udp = append(s.udp, c)
	s.endpoints = append(s.endpoints, Endpoint{UDP, c.LocalAddr().String()})
	return nil
}

// serveUDP answers every datagram from the address it was sent to. Without
// that, a reply to a packet addressed to one of several local addresses (a
// node's underlay IP reached from a pod) leaves from whichever address the
// route back prefers, and the connected client drops it.
func (s *Server) serveUDP(c net.PacketConn) error {
	if p := ipv6.NewPacketConn(c); c.LocalAddr().(*net.UDPAddr).IP.To4() == nil && p.SetControlMessage(ipv6.FlagDst, true) == nil {
		buf := make([]byte, 64*1024)
		for {
			_, cm, peer, err := p.ReadFrom(buf)
			if err != nil {
				return err
			}
			var out *ipv6.ControlMessage
			if cm != nil && cm.Dst != nil {
				out = &ipv6.ControlMessage{Src: cm.Dst}
			}
			_, _ = p.WriteTo(s.reply, out, peer)
		}
	}
	if p := ipv4.NewPacketConn(c); p.SetControlMessage(ipv4.FlagDst, true) == nil {
		buf := make([]byte, 64*1024)
		for {
			_, cm, peer, err := p.ReadFrom(buf)
			if err != nil {
				return err
			}
			var out *ipv4.ControlMessage
			if cm != nil && cm.Dst != nil {
				out = &ipv4.ControlMessage{Src: cm.Dst}
			}
			_, _ = p.WriteTo(s.reply, out, peer)
		}
	}
	buf := make([]byte, 64*1024)
	for {
		_, peer, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		_, _ = c.WriteTo(s.reply, peer)
	}
}

func (s *Server) serveSCTP(l *sctpListener) error {
	fd, err := l.accept()
	if err != nil {
		return err
	}
	s.replies.Go(func() { replySCTP(fd, s.line) })
	return nil
}
