package probe

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSCTPSocketCodeOverTCP runs the SCTP server and client code with TCP
// sockets in place of SCTP ones: the system calls are the same, so this
// covers bind/listen/accept, non-blocking connect, poll and reads on kernels
// without SCTP.
func TestSCTPSocketCodeOverTCP(t *testing.T) {
	sctpProto = unix.IPPROTO_TCP
	t.Cleanup(func() { sctpProto = unix.IPPROTO_SCTP })

	eps := startServer(t, ServeConfig{Name: "pod-s", Address: "127.0.0.1", SCTP: []int{0}})
	res := Connect(context.Background(), Request{Protocol: SCTP, Target: eps[SCTP], Timeout: 5 * time.Second})
	if !res.Success || res.Reply != "pod-s" {
		t.Fatalf("got %+v, want reply pod-s", res)
	}

	// All addresses: dual-stack where the kernel has IPv6.
	all := startServer(t, ServeConfig{Name: "pod-all", SCTP: []int{0}})
	_, port, _ := net.SplitHostPort(all[SCTP])
	hosts := []string{"127.0.0.1"}
	if hasIPv6Loopback() {
		hosts = append(hosts, "::1")
	}
	for _, host := range hosts {
		target := net.JoinHostPort(host, port)
		if res := Connect(context.Background(), Request{Protocol: SCTP, Target: target}); !res.Success || res.Reply != "pod-all" {
			t.Errorf("%s: got %+v, want reply pod-all", target, res)
		}
	}

	closed := net.JoinHostPort("127.0.0.1", port)
	if l, err := listenSCTP("127.0.0.1", 0); err == nil {
		closed = l.addr
		l.Close()
	}
	res = Connect(context.Background(), Request{Protocol: SCTP, Target: closed, Timeout: 5 * time.Second})
	if want := "dial sctp " + closed + ": connection refused"; res.Success || res.Error != want {
		t.Errorf("closed port: got %+v, want error %q", res, want)
	}

	// A listener that never accepts: the connection opens, no reply comes.
	l, err := listenSCTP("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	res = Connect(context.Background(), Request{Protocol: SCTP, Target: l.addr, Timeout: 500 * time.Millisecond})
	if want := "no reply from sctp " + l.addr + " within 500ms"; res.Success || res.Error != want {
		t.Errorf("silent listener: got %+v, want error %q", res, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("silent listener: took %s with a 500ms timeout", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	res = Connect(ctx, Request{Protocol: SCTP, Target: l.addr, Timeout: time.Minute})
	if res.Success || !strings.Contains(res.Error, "canceled") {
		t.Errorf("cancelled: got %+v, want a cancelled failure", res)
	}
}
