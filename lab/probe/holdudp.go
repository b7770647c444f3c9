package probe

import (
	"context"
	"fmt"
	"net"
	"time"
)

// HoldUDP keeps one UDP flow (one socket, one 5-tuple) busy for Duration:
// a datagram every Interval, each answered by the server within Timeout or
// counted lost. It succeeds when none is lost. It never returns an error;
// failures are in the result.
func HoldUDP(ctx context.Context, req HoldRequest) HoldResult {
	if req.Interval <= 0 {
		req.Interval = 100 * time.Millisecond
	}
	if req.Timeout <= 0 {
		req.Timeout = time.Second
	}
	res := HoldResult{Target: req.Target}
	d := net.Dialer{Timeout: req.Timeout}
	c, err := d.DialContext(ctx, "udp", req.Target)
	if err != nil {
		res.Error = opError("dial", UDP, req.Target, err).Error()
		return res
	}
	defer c.Close()
	buf := make([]byte, 512)
	end := time.Now().Add(req.Duration)
	last := time.Now()
	tick := time.NewTicker(req.Interval)
	defer tick.Stop()
	for time.Now().Before(end) {
		if _, err := c.Write([]byte("x")); err != nil {
			res.Error = fmt.Sprintf("send to udp %s: %v", req.Target, cause(err))
			return res
		}
		res.Sent++
		_ = c.SetReadDeadline(time.Now().Add(req.Timeout))
		if _, err := c.Read(buf); err == nil {
			res.Echoed++
			now := time.Now()
			if gap := float64(now.Sub(last).Microseconds()) / 1000; gap > res.MaxGapMS {
				res.MaxGapMS = gap
			}
			last = now
		} else if !isTimeout(err) {
			res.Error = fmt.Sprintf("receive from udp %s: %v", req.Target, cause(err))
			return res
		}
		select {
		case <-ctx.Done():
			res.Error = ctx.Err().Error()
			return res
		case <-tick.C:
		}
	}
	if lost := res.Sent - res.Echoed; lost > 0 {
		res.Error = fmt.Sprintf("%d of %d datagrams to udp %s got no reply within %s", lost, res.Sent, req.Target, req.Timeout)
		return res
	}
	res.Success = true
	return res
}
