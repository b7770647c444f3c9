package probe

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestLoadModes runs every mode briefly against a real server on loopback:
// each must count work, and the RR modes must report ordered percentiles.
func TestLoadModes(t *testing.T) {
	eps := startServer(t, ServeConfig{Name: "srv", Address: "127.0.0.1", TCP: []int{0}, UDP: []int{0}})
	for _, m := range Modes {
		target := eps[TCP]
		if m == UDPRR {
			target = eps[UDP]
		}
		r := Load(context.Background(), LoadSpec{Mode: m, Target: target, Warmup: 20 * time.Millisecond, Duration: 150 * time.Millisecond})
		if r.Error != "" || r.Value <= 0 || r.Unit != m.Unit() || r.Seconds < 0.15 {
			t.Errorf("%s: %+v", m, r)
			continue
		}
		if m == TCPStream {
			if r.Bytes <= 0 {
				t.Errorf("%s counted no bytes: %+v", m, r)
			}
			continue
		}
		if r.Transactions < 5 || r.P50US <= 0 || r.P99US < r.P50US {
			t.Errorf("%s: %+v", m, r)
		}
	}
}

// TestLoadAfterEcho checks the line echo still works beside the load modes:
// a first line that is not a mode line is echoed as before.
func TestLoadAfterEcho(t *testing.T) {
	eps := startServer(t, ServeConfig{Name: "srv", Address: "127.0.0.1", TCP: []int{0}})
	r := Hold(context.Background(), HoldRequest{Target: eps[TCP], Duration: 300 * time.Millisecond, Interval: 50 * time.Millisecond})
	if !r.Success || r.Echoed < 3 {
		t.Fatalf("echo after the load modes were added: %+v", r)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		spec LoadSpec
		want string
	}{
		{LoadSpec{Mode: "TCP_MAERTS", Target: "127.0.0.1:1", Duration: time.Second}, "unknown load mode"},
		{LoadSpec{Mode: TCPRR, Target: "127.0.0.1", Duration: time.Second}, "missing port"},
		{LoadSpec{Mode: TCPRR, Target: "127.0.0.1:1"}, "must be positive"},
		{LoadSpec{Mode: TCPRR, Target: "127.0.0.1:1", Duration: time.Second}, "dial tcp 127.0.0.1:1"},
		{LoadSpec{Mode: TCPCRR, Target: "127.0.0.1:1", Duration: time.Second}, "dial tcp 127.0.0.1:1"},
	} {
		r := Load(context.Background(), tc.spec)
		if !strings.Contains(r.Error, tc.want) {
			t.Errorf("Load(%+v) error %q, want it to contain %q", tc.spec, r.Error, tc.want)
		}
	}
	if m, err := ParseMode("tcp_rr"); m != TCPRR || err != nil {
		t.Errorf("ParseMode(tcp_rr) = %q, %v", m, err)
	}
}

func TestPercentile(t *testing.T) {
	lat := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for i := range lat {
		lat[i] *= time.Microsecond
	}
	if p := percentileUS(lat, 50); p != 5 {
		t.Errorf("p50 = %v, want 5", p)
	}
	if p := percentileUS(lat, 99); p != 10 {
		t.Errorf("p99 = %v, want 10", p)
	}
	if p := percentileUS(nil, 99); p != 0 {
		t.Errorf("p99 of nothing = %v", p)
	}
}

func TestAwait(t *testing.T) {
	eps := startServer(t, ServeConfig{Name: "srv", Address: "127.0.0.1", TCP: []int{0}})
	open := Request{Protocol: TCP, Target: eps[TCP], Timeout: 200 * time.Millisecond}
	r := Await(context.Background(), AwaitRequest{Request: open, Want: true, Within: time.Second})
	if !r.Reached || r.Attempts != 1 || r.At.IsZero() {
		t.Errorf("await reachable on an open port: %+v", r)
	}
	r = Await(context.Background(), AwaitRequest{Request: open, Want: false, Interval: 20 * time.Millisecond, Within: 150 * time.Millisecond})
	if r.Reached || r.Attempts < 3 || !strings.Contains(r.Error, "still reachable") {
		t.Errorf("await unreachable on an open port: %+v", r)
	}
}

func TestHoldUDP(t *testing.T) {
	eps := startServer(t, ServeConfig{Name: "srv", Address: "127.0.0.1", UDP: []int{0}})
	r := HoldUDP(context.Background(), HoldRequest{Target: eps[UDP], Duration: 300 * time.Millisecond, Interval: 50 * time.Millisecond, Timeout: time.Second})
	if !r.Success || r.Sent < 4 || r.Echoed != r.Sent {
		t.Errorf("UDP hold on a live server: %+v", r)
	}
	port := freePort(t, "udp")
	r = HoldUDP(context.Background(), HoldRequest{Target: fmt.Sprintf("127.0.0.1:%d", port), Duration: 150 * time.Millisecond, Interval: 50 * time.Millisecond, Timeout: 20 * time.Millisecond})
	if r.Success || r.Error == "" {
		t.Errorf("UDP hold on a closed port succeeded: %+v", r)
	}
}
