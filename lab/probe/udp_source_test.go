package probe

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"
)

// A UDP reply must leave from the address the request was sent to: here the
// request goes to 127.0.0.2, while the route back to 127.0.0.1 would pick
// 127.0.0.1 as source, and the connected client would drop the reply.
func TestUDPReplyComesFromRequestedAddress(t *testing.T) {
	s, err := Listen(ServeConfig{Name: "srv", UDP: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Serve(ctx) }()
	defer s.Close()
	_, port, err := net.SplitHostPort(s.Endpoints()[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	r := Connect(ctx, Request{Protocol: UDP, Target: net.JoinHostPort("127.0.0.2", strconv.Itoa(p)), Timeout: 2 * time.Second})
	if !r.Success || r.Reply != "srv" {
		t.Fatalf("udp to a secondary local address: %+v", r)
	}
}
