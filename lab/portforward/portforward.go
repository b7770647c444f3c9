// Package portforward carries TCP connections from a loopback port of the root
// network namespace to an address inside a lab namespace. The listening socket
// is opened in the root namespace and handed to a process that lives in the
// lab namespace, so every connection it dials starts inside the lab: the root
// namespace never gets a route into the lab.
package portforward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Listen opens the loopback listener. A taken port is reported by name.
func Listen(addr string) (*net.TCPListener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("port %s is already in use", addr)
		}
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l.(*net.TCPListener), nil
}

// ListenerFromFD turns an inherited descriptor back into a listener.
func ListenerFromFD(fd uintptr) (net.Listener, error) {
	f := os.NewFile(fd, "listener")
	if f == nil {
		return nil, fmt.Errorf("fd %d is not open", fd)
	}
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("fd %d is not a listening socket: %w", fd, err)
	}
	return l, nil
}

// Serve accepts connections on l and joins each to a new connection to target
// until ctx is done.
func Serve(ctx context.Context, l net.Listener, target string) error {
	go func() { <-ctx.Done(); l.Close() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			join(ctx, c, target)
		}()
	}
}

func join(ctx context.Context, c net.Conn, target string) {
	defer c.Close()
	d := net.Dialer{Timeout: 10 * time.Second}
	u, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		fmt.Fprintf(os.Stderr, "port-forward: dial %s: %v\n", target, err)
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(u, c)
	go cp(c, u)
	select {
	case <-done:
		<-done
	case <-ctx.Done():
	}
}
