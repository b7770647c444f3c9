package portforward

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
)

func TestServeJoinsConnections(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			b, _ := io.ReadAll(io.LimitReader(c, 5))
			_, _ = c.Write([]byte(strings.ToUpper(string(b))))
			c.Close()
		}
	}()
	front, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = Serve(ctx, front, backend.Addr().String()) }()
	c, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("hello"))
	got, _ := io.ReadAll(c)
	if string(got) != "HELLO" {
		t.Fatalf("got %q through the forward, want HELLO", got)
	}
}

func TestListenNamesTakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Listen(l.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("want an 'already in use' error naming %s, got %v", l.Addr(), err)
	}
}
