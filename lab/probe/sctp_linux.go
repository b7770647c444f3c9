package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// SCTPSupported reports whether this kernel can open an SCTP socket, that is
// socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) succeeds (the kernel may load the
// sctp module to serve it).
func SCTPSupported() bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_SCTP)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// sctpProto is the protocol of the sockets sctpSocket opens; tests swap in
// IPPROTO_TCP to exercise the socket code on kernels without SCTP.
var sctpProto = unix.IPPROTO_SCTP

// sctpSocket opens a non-blocking one-to-one SCTP socket.
func sctpSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, sctpProto)
	switch {
	case errors.Is(err, unix.EPROTONOSUPPORT), errors.Is(err, unix.ESOCKTNOSUPPORT):
		return -1, ErrSCTPUnsupported
	case err != nil:
		return -1, fmt.Errorf("socket: %w", err)
	}
	return fd, nil
}

func sockaddr(ap netip.AddrPort) (family int, sa unix.Sockaddr) {
	a := ap.Addr().Unmap()
	if a.Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	}
	sa6 := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	if a.Zone() != "" {
		if ifi, err := net.InterfaceByName(a.Zone()); err == nil {
			sa6.ZoneId = uint32(ifi.Index)
		}
	}
	return unix.AF_INET6, sa6
}

// sctpListener is a listening SCTP socket. It is wrapped in an *os.File so
// that accept waits in the runtime poller and Close interrupts it.
type sctpListener struct {
	f    *os.File
	addr string
}

// listenSCTP listens on address:port; an empty address means all addresses,
// IPv6 and IPv4 when the kernel has IPv6, else IPv4.
func listenSCTP(address string, port int) (*sctpListener, error) {
	ip := netip.IPv6Unspecified()
	if address != "" {
		var err error
		if ip, err = netip.ParseAddr(address); err != nil {
			return nil, fmt.Errorf("bad listen address %q", address)
		}
	}
	family, sa := sockaddr(netip.AddrPortFrom(ip, uint16(port)))
	fd, err := sctpSocket(family)
	if errors.Is(err, unix.EAFNOSUPPORT) && address == "" {
		family, sa = sockaddr(netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port)))
		fd, err = sctpSocket(family)
	}
	if err != nil {
		return nil, err
	}
	if err := bindListen(fd, family, address == "", sa); err != nil {
		unix.Close(fd)
		return nil, err
	}
	l := &sctpListener{f: os.NewFile(uintptr(fd), "sctp-listener")}
	if lsa, err := unix.Getsockname(fd); err == nil {
		l.addr = sockaddrString(lsa)
	}
	return l, nil
}

func bindListen(fd, family int, dualStack bool, sa unix.Sockaddr) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("setsockopt SO_REUSEADDR: %w", err)
	}
	if family == unix.AF_INET6 && dualStack {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			return fmt.Errorf("setsockopt IPV6_V6ONLY: %w", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return nil
}

func sockaddrString(sa unix.Sockaddr) string {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return net.JoinHostPort(netip.AddrFrom4(sa.Addr).String(), strconv.Itoa(sa.Port))
	case *unix.SockaddrInet6:
		return net.JoinHostPort(netip.AddrFrom16(sa.Addr).String(), strconv.Itoa(sa.Port))
	}
	return ""
}

// accept waits for a connection and returns its blocking descriptor.
func (l *sctpListener) accept() (int, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd, aerr := -1, error(nil)
	err = rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_CLOEXEC)
		return !errors.Is(aerr, unix.EAGAIN)
	})
	if err != nil {
		return -1, err
	}
	return nfd, aerr
}

func (l *sctpListener) Close() error { return l.f.Close() }

// replySCTP writes reply to an accepted connection and closes it.
func replySCTP(fd int, reply []byte) {
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 5}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	for len(reply) > 0 {
		n, err := unix.Write(fd, reply)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		reply = reply[n:]
	}
}

func connectSCTP(ctx context.Context, target string, timeout time.Duration) (string, error) {
	c, err := dialSCTP(ctx, target)
	if err != nil {
		return "", opError("dial", SCTP, target, err)
	}
	defer unix.Close(c.fd)
	return readReply(ctx, c, SCTP, target, timeout)
}

// sctpConn is a connected non-blocking SCTP socket whose reads wait, with
// poll(2), no longer than its context allows.
type sctpConn struct {
	ctx context.Context
	fd  int
}

func dialSCTP(ctx context.Context, target string) (*sctpConn, error) {
	host, port, err := SplitTarget(target)
	if err != nil {
		return nil, err
	}
	addr, err := resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	family, sa := sockaddr(netip.AddrPortFrom(addr, uint16(port)))
	fd, err := sctpSocket(family)
	if err != nil {
		return nil, err
	}
	err = unix.Connect(fd, sa)
	if errors.Is(err, unix.EINPROGRESS) {
		if err = waitFD(ctx, fd, unix.POLLOUT); err == nil {
			var soerr int
			soerr, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if err == nil && soerr != 0 {
				err = unix.Errno(soerr)
			}
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &sctpConn{ctx: ctx, fd: fd}, nil
}

// Read implements io.Reader.
func (c *sctpConn) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(c.fd, p)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			if err := waitFD(c.ctx, c.fd, unix.POLLIN); err != nil {
				return 0, err
			}
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// waitFD polls fd for events until it is ready or ctx is done; it wakes up
// regularly to notice a cancelled ctx.
func waitFD(ctx context.Context, fd int, events int16) error {
	for {
		if ctx.Err() != nil {
			return ctxErr(ctx, ctx.Err())
		}
		wait := 100 * time.Millisecond
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			wait = max(time.Until(d), time.Millisecond)
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(pfd, int(wait.Milliseconds()))
		switch {
		case errors.Is(err, unix.EINTR):
		case err != nil:
			return fmt.Errorf("poll: %w", err)
		case n > 0:
			return nil
		}
	}
}
