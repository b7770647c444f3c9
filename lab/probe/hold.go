package probe

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"time"
)

// HoldRequest asks for one TCP connection kept busy for Duration: a line
// every Interval, each echoed by the server within Timeout.
type HoldRequest struct {
	Target   string
	Duration time.Duration
	Interval time.Duration
	Timeout  time.Duration
}

// HoldResult says whether the connection survived, and the longest time
// between two answered lines (the traffic gap a disruption caused).
type HoldResult struct {
	Target   string  `json:"target"`
	Success  bool    `json:"success"`
	Sent     int     `json:"sent"`
	Echoed   int     `json:"echoed"`
	MaxGapMS float64 `json:"max_gap_ms"`
	Error    string  `json:"error,omitempty"`
}

// Hold keeps one connection to a cnilab-probe server busy and reports how it
// fared. It never returns an error; failures are in the result.
func Hold(ctx context.Context, req HoldRequest) HoldResult {
	if req.Interval <= 0 {
		req.Interval = 100 * time.Millisecond
	}
	if req.Timeout <= 0 {
		req.Timeout = 5 * time.Second
	}
	res := HoldResult{Target: req.Target}
	d := net.Dialer{Timeout: req.Timeout}
	c, err := d.DialContext(ctx, "tcp", req.Target)
	if err != nil {
		res.Error = opError("dial", TCP, req.Target, err).Error()
		return res
	}
	defer c.Close()
	r := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(req.Timeout))
	if _, err := r.ReadString('\n'); err != nil {
		res.Error = fmt.Sprintf("no greeting from tcp %s: %v", req.Target, cause(err))
		return res
	}
	end := time.Now().Add(req.Duration)
	last := time.Now()
	tick := time.NewTicker(req.Interval)
	defer tick.Stop()
	for seq := 0; time.Now().Before(end); seq++ {
		msg := "seq " + strconv.Itoa(seq) + "\n"
		_ = c.SetDeadline(time.Now().Add(req.Timeout))
		if _, err := c.Write([]byte(msg)); err != nil {
			res.Error = fmt.Sprintf("connection to %s broke after %d lines: %v", req.Target, res.Echoed, cause(err))
			return res
		}
		res.Sent++
		line, err := r.ReadString('\n')
		if err != nil || line != msg {
			res.Error = fmt.Sprintf("connection to %s broke after %d lines: echo %q: %v", req.Target, res.Echoed, line, cause(err))
			return res
		}
		res.Echoed++
		now := time.Now()
		if gap := float64(now.Sub(last).Microseconds()) / 1000; gap > res.MaxGapMS {
			res.MaxGapMS = gap
		}
		last = now
		select {
		case <-ctx.Done():
			res.Error = ctx.Err().Error()
			return res
		case <-tick.C:
		}
	}
	res.Success = true
	return res
}
