package probe

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startServer runs a probe server until the test ends and returns its
// endpoints by protocol.
func startServer(t *testing.T, cfg ServeConfig) map[Protocol]string {
	t.Helper()
	s, err := Listen(cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	eps := map[Protocol]string{}
	for _, e := range s.Endpoints() {
		eps[e.Protocol] = e.Addr
	}
	return eps
}

// freePort returns a port with nothing listening on it for network.
func freePort(t *testing.T, network string) int {
	t.Helper()
	var addr net.Addr
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = c.LocalAddr()
		c.Close()
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = l.Addr()
		l.Close()
	}
	_, p, _ := net.SplitHostPort(addr.String())
	n, _ := strconv.Atoi(p)
	return n
}

func TestServeConnect(t *testing.T) {
	eps := startServer(t, ServeConfig{Name: "pod-a", Address: "127.0.0.1", TCP: []int{0}, UDP: []int{0}})
	for _, p := range []Protocol{TCP, UDP} {
		res := Connect(context.Background(), Request{Protocol: p, Target: eps[p], Timeout: 5 * time.Second})
		if !res.Success || res.Reply != "pod-a" || res.Error != "" || res.Protocol != string(p) {
			t.Errorf("%s: got %+v, want success with reply pod-a", p, res)
		}
	}
}

// hasIPv6Loopback reports whether ::1 is usable.
func hasIPv6Loopback() bool {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func TestServeConnectIPv6(t *testing.T) {
	if !hasIPv6Loopback() {
		t.Skip("no IPv6 loopback")
	}
	eps := startServer(t, ServeConfig{Name: "pod-6", TCP: []int{0}, UDP: []int{0}})
	for _, p := range []Protocol{TCP, UDP} {
		_, port, _ := net.SplitHostPort(eps[p])
		target := net.JoinHostPort("::1", port)
		if res := Connect(context.Background(), Request{Protocol: p, Target: target}); !res.Success || res.Reply != "pod-6" {
			t.Errorf("%s %s: got %+v", p, target, res)
		}
	}
}

func TestConnectNoListener(t *testing.T) {
	for _, p := range []Protocol{TCP, UDP} {
		target := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, string(p))))
		start := time.Now()
		res := Connect(context.Background(), Request{Protocol: p, Target: target, Timeout: 10 * time.Second})
		if res.Success || !strings.Contains(res.Error, "connection refused") || !strings.Contains(res.Error, target) {
			t.Errorf("%s: got %+v, want connection refused", p, res)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: refused connection took %s, want a fast failure", p, d)
		}
	}
}

func TestTCPTimeout(t *testing.T) {
	// The kernel completes the handshake, but nobody ever accepts or writes.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	res := Connect(context.Background(), Request{Protocol: TCP, Target: l.Addr().String(), Timeout: 500 * time.Millisecond})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s with a 500ms timeout", d)
	}
	want := "no reply from tcp " + l.Addr().String() + " within 500ms"
	if res.Success || res.Error != want {
		t.Errorf("got %+v, want error %q", res, want)
	}
}

func TestUDPTimeoutResends(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := 0
	go func() {
		buf := make([]byte, 100)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
			mu.Lock()
			got++
			mu.Unlock()
		}
	}()
	defer c.Close()
	start := time.Now()
	res := Connect(context.Background(), Request{Protocol: UDP, Target: c.LocalAddr().String(), Timeout: time.Second})
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("took %s with a 1s timeout", d)
	}
	want := "no reply from udp " + c.LocalAddr().String() + " within 1s"
	if res.Success || res.Error != want {
		t.Errorf("got %+v, want error %q", res, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if got < 2 {
		t.Errorf("server saw %d datagrams, want the client to resend", got)
	}
}

func TestConnectCancelled(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := Connect(ctx, Request{Protocol: TCP, Target: l.Addr().String(), Timeout: time.Minute})
	if d := time.Since(start); res.Success || d > 10*time.Second {
		t.Errorf("got %+v after %s, want a failure soon after the context ends", res, d)
	}
}

func TestListenErrorNamesPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	p, _ := strconv.Atoi(port)
	err = Serve(context.Background(), ServeConfig{Name: "x", Address: "127.0.0.1", TCP: []int{p}})
	if want := "listen tcp 127.0.0.1:" + port + ": "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v, want an error starting %q", err, want)
	}
	if _, err := Listen(ServeConfig{Name: "x"}); err == nil {
		t.Error("Listen with no ports succeeded")
	}
}

func TestServeReturnsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ServeConfig{Address: "127.0.0.1", TCP: []int{0}, UDP: []int{0}}) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}
