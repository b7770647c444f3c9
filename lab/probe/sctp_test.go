package probe

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSCTPUnsupportedKernel(t *testing.T) {
	if SCTPSupported() {
		t.Skip("this kernel has SCTP")
	}
	port := freePort(t, "tcp")
	_, err := Listen(ServeConfig{Name: "x", Address: "127.0.0.1", TCP: []int{port}, SCTP: []int{80}})
	if want := "listen sctp 127.0.0.1:80: protocol not supported by this kernel"; err == nil || err.Error() != want {
		t.Fatalf("Listen: got %v, want %q", err, want)
	}
	if !errors.Is(err, ErrSCTPUnsupported) {
		t.Errorf("error %v is not ErrSCTPUnsupported", err)
	}
	// The TCP listener opened before the failure was closed again.
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("TCP port still held after a failed Listen: %v", err)
	}
	l.Close()

	res := Connect(context.Background(), Request{Protocol: SCTP, Target: "127.0.0.1:80"})
	if want := "dial sctp 127.0.0.1:80: protocol not supported by this kernel"; res.Success || res.Error != want {
		t.Fatalf("Connect: got %+v, want error %q", res, want)
	}
}

func TestSCTPServeConnect(t *testing.T) {
	if !SCTPSupported() {
		t.Skip("kernel has no SCTP: socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails")
	}
	eps := startServer(t, ServeConfig{Name: "pod-s", Address: "127.0.0.1", SCTP: []int{0}})
	res := Connect(context.Background(), Request{Protocol: SCTP, Target: eps[SCTP], Timeout: 5 * time.Second})
	if !res.Success || res.Reply != "pod-s" {
		t.Fatalf("got %+v, want reply pod-s", res)
	}
	l, err := listenSCTP("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	target := l.addr
	l.Close()
	res = Connect(context.Background(), Request{Protocol: SCTP, Target: target, Timeout: 5 * time.Second})
	if res.Success || !strings.Contains(res.Error, "dial sctp "+target) {
		t.Fatalf("closed port: got %+v, want a dial failure", res)
	}
}
