package probe

import (
	"context"
	"testing"
	"time"
)

func TestICMPLoopback(t *testing.T) {
	c, err := listenICMP(false)
	if err != nil {
		t.Skipf("neither raw nor unprivileged ICMP sockets are permitted: %v", err)
	}
	t.Logf("raw socket: %v", c.raw)
	c.Close()
	res := Connect(context.Background(), Request{Protocol: ICMP, Target: "127.0.0.1", Timeout: 5 * time.Second})
	if !res.Success || res.Reply != "127.0.0.1" {
		t.Fatalf("got %+v, want an echo reply from 127.0.0.1", res)
	}
}
