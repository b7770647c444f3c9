package probe

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestParseSpec(t *testing.T) {
	r, err := ParseSpec("udp/10.0.0.5:81")
	if err != nil || r.Protocol != UDP || r.Target != "10.0.0.5:81" {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := ParseSpec("icmp/10.0.0.5"); err != nil || r.Protocol != ICMP {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range []string{"tcp10.0.0.5:80", "smtp/10.0.0.5:25", "tcp/10.0.0.5"} {
		if _, err := ParseSpec(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseSpec(%q): want an error naming the spec, got %v", bad, err)
		}
	}
}

func TestConnectAllKeepsOrderAndRunsInParallel(t *testing.T) {
	s, err := Listen(ServeConfig{Name: "srv", Address: "127.0.0.1", TCP: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Serve(ctx) }()
	open := s.Endpoints()[0].Addr
	var reqs []Request
	for i := 0; i < 6; i++ {
		// A silent UDP peer: each of these waits its whole timeout.
		reqs = append(reqs, Request{Protocol: UDP, Target: "127.0.0.1:9", Timeout: 500 * time.Millisecond})
		reqs = append(reqs, Request{Protocol: TCP, Target: open, Timeout: time.Second})
	}
	start := time.Now()
	res := ConnectAll(ctx, reqs, 12)
	for i, r := range res {
		if want := i%2 == 1; r.Success != want {
			t.Errorf("result %d (%s): success=%v, want %v", i, r.Target, r.Success, want)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("12 probes with concurrency 12 took %s: not parallel", d)
	}
}
