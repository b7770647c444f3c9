package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// payload is what the UDP client sends.
var payload = []byte("cnilab-probe")

// udpRetry is how often the UDP and ICMP clients resend while waiting.
const udpRetry = 300 * time.Millisecond

// maxReply bounds how much of a reply is read.
const maxReply = 4096

// errTimeout is the cause reported when an attempt runs out of time.
var errTimeout = errors.New("i/o timeout")

// Connect makes one attempt to reach req.Target and reports the outcome. It
// never returns an error: failures, including invalid requests, are reported in
// Result.Error with Success false. The attempt ends after req.Timeout or when
// ctx is done, whichever comes first.
func Connect(ctx context.Context, req Request) Result {
	res := Result{Protocol: string(req.Protocol), Target: req.Target}
	if err := req.Validate(); err != nil {
		res.Error = err.Error()
		return res
	}
	p, _ := ParseProtocol(string(req.Protocol))
	res.Protocol = string(p)
	timeout := req.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	start := time.Now()
	var reply string
	var err error
	switch p {
	case TCP:
		reply, err = connectTCP(ctx, req.Target, timeout)
	case UDP:
		reply, err = connectUDP(ctx, req.Target, timeout)
	case SCTP:
		reply, err = connectSCTP(ctx, req.Target, timeout)
	case ICMP:
		reply, err = connectICMP(ctx, req.Target, timeout)
	}
	res.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Success, res.Reply = true, reply
	return res
}

func connectTCP(ctx context.Context, target string, timeout time.Duration) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return "", opError("dial", TCP, target, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	return readReply(ctx, conn, TCP, target, timeout)
}

func connectUDP(ctx context.Context, target string, timeout time.Duration) (string, error) {
	var d net.Dialer
	// A connected socket, so an ICMP port unreachable fails the next read.
	conn, err := d.DialContext(ctx, "udp", target)
	if err != nil {
		return "", opError("dial", UDP, target, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	deadline, _ := ctx.Deadline()
	buf := make([]byte, maxReply)
	for {
		if _, err := conn.Write(payload); err != nil {
			return "", opError("write", UDP, target, ctxErr(ctx, err))
		}
		// Resend periodically: the first datagram may be lost while ARP resolves.
		_ = conn.SetReadDeadline(minTime(time.Now().Add(udpRetry), deadline))
		n, err := conn.Read(buf)
		if err == nil {
			return strings.TrimSpace(string(buf[:n])), nil
		}
		if !isTimeout(err) {
			return "", opError("read", UDP, target, err)
		}
		if ctx.Err() != nil {
			return "", noReply(ctx, UDP, target, timeout)
		}
	}
}

// readReply reads the first line a stream server sends. Any data counts as a
// reply, even without a newline.
func readReply(ctx context.Context, r io.Reader, p Protocol, target string, timeout time.Duration) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, maxReply)).ReadString('\n')
	if line = strings.TrimRight(line, "\r\n"); line != "" {
		return line, nil
	}
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return "", fmt.Errorf("%s %s: connection closed without reply", p, target)
	case isTimeout(err):
		return "", noReply(ctx, p, target, timeout)
	}
	return "", opError("read", p, target, err)
}

// noReply is the error of an attempt that got no answer before ctx ended.
func noReply(ctx context.Context, p Protocol, target string, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%s %s: %w", p, target, context.Canceled)
	}
	return fmt.Errorf("no reply from %s %s within %s", p, target, timeout)
}

// opError formats an error as "op proto target: cause", dropping the layers of
// *net.OpError and *os.SyscallError that would repeat the same information.
func opError(op string, p Protocol, target string, err error) error {
	return fmt.Errorf("%s %s %s: %w", op, p, target, cause(err))
}

func cause(err error) error {
	if isTimeout(err) {
		return errTimeout
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ctxErr prefers the context's error to err once the context is done, since
// the context is why the I/O was interrupted.
func ctxErr(ctx context.Context, err error) error {
	switch ctx.Err() {
	case nil:
		return err
	case context.DeadlineExceeded:
		return errTimeout
	default:
		return ctx.Err()
	}
}

// resolve returns an address of host, preferring IPv4.
func resolve(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("lookup %s: no addresses", host)
	}
	return addrs[0], nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
