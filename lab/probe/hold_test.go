package probe

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestHoldKeepsOneConnection(t *testing.T) {
	s, err := Listen(ServeConfig{Name: "srv", Address: "127.0.0.1", TCP: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Serve(ctx) }()
	target := s.Endpoints()[0].Addr
	r := Hold(ctx, HoldRequest{Target: target, Duration: 500 * time.Millisecond, Interval: 20 * time.Millisecond})
	if !r.Success || r.Echoed < 5 || r.Echoed != r.Sent {
		t.Fatalf("hold: %+v", r)
	}
	// Closing the server mid-hold breaks the connection, and Hold says so.
	go func() { time.Sleep(200 * time.Millisecond); s.Close() }()
	r = Hold(ctx, HoldRequest{Target: target, Duration: 5 * time.Second, Interval: 20 * time.Millisecond, Timeout: time.Second})
	if r.Success || !strings.Contains(r.Error, "broke after") {
		t.Fatalf("hold across a server close: %+v", r)
	}
}
