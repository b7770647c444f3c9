package probe

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sort"
	"time"
)

// RRResult is a netperf-style TCP_RR measurement: one connection, one
// 1-byte request (plus newline) and its echo at a time, for a fixed time.
type RRResult struct {
	Target       string  `json:"target"`
	Transactions int     `json:"transactions"`
	Seconds      float64 `json:"seconds"`
	PerSecond    float64 `json:"trans_per_sec"`
	P50US        float64 `json:"p50_us"`
	P99US        float64 `json:"p99_us"`
	Error        string  `json:"error,omitempty"`
}

// RR runs TCP request/response against a cnilab-probe server's echo for
// duration after a warm-up.
func RR(ctx context.Context, target string, warmup, duration time.Duration) RRResult {
	res := RRResult{Target: target}
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		res.Error = opError("dial", TCP, target, err).Error()
		return res
	}
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	r := bufio.NewReader(c)
	_ = c.SetDeadline(time.Now().Add(warmup + duration + 10*time.Second))
	if _, err := r.ReadString('\n'); err != nil {
		res.Error = fmt.Sprintf("no greeting from %s: %v", target, err)
		return res
	}
	req := []byte("x\n")
	one := func() (time.Duration, error) {
		t := time.Now()
		if _, err := c.Write(req); err != nil {
			return 0, err
		}
		if _, err := r.ReadString('\n'); err != nil {
			return 0, err
		}
		return time.Since(t), nil
	}
	for end := time.Now().Add(warmup); time.Now().Before(end); {
		if _, err := one(); err != nil {
			res.Error = err.Error()
			return res
		}
	}
	var lat []time.Duration
	start := time.Now()
	for end := start.Add(duration); time.Now().Before(end) && ctx.Err() == nil; {
		l, err := one()
		if err != nil {
			res.Error = err.Error()
			return res
		}
		lat = append(lat, l)
	}
	res.Seconds = time.Since(start).Seconds()
	res.Transactions = len(lat)
	if res.Seconds > 0 {
		res.PerSecond = float64(len(lat)) / res.Seconds
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		res.P50US = float64(lat[len(lat)/2].Nanoseconds()) / 1000
		res.P99US = float64(lat[len(lat)*99/100].Nanoseconds()) / 1000
	}
	return res
}
