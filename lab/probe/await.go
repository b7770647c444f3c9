package probe

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// AwaitRequest asks for a probe repeated until its outcome is Want.
type AwaitRequest struct {
	Request
	// Want is the awaited outcome: true for reachable, false for not.
	Want bool
	// Interval is the time between the starts of two attempts. Attempts
	// overlap: a dropped packet's attempt runs its whole Timeout while the
	// next ones start, so the resolution is Interval, not Timeout.
	Interval time.Duration
	// Within bounds the whole wait.
	Within time.Duration
}

// AwaitResult is the earliest attempt that saw Want, or the last one.
type AwaitResult struct {
	Result
	Reached  bool `json:"reached"`
	Attempts int  `json:"attempts"`
	// At is when the earliest attempt that saw Want started (this machine's
	// clock): a policy change made before it had taken effect by then.
	At time.Time `json:"at"`
}

// Await starts an attempt every Interval until one sees Want or Within
// passes. Once one does, it lets the attempts started before it finish and
// reports the earliest that saw Want.
func Await(ctx context.Context, req AwaitRequest) AwaitResult {
	if req.Interval <= 0 {
		req.Interval = 50 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, req.Within)
	defer cancel()
	type attempt struct {
		start time.Time
		res   Result
	}
	results := make(chan attempt)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		go func() { wg.Wait(); close(results) }()
		for range results {
		}
	}()
	var out AwaitResult
	var hit *attempt
	inFlight := map[time.Time]bool{}
	tick := time.NewTicker(req.Interval)
	defer tick.Stop()
	launch := func() {
		start := time.Now()
		inFlight[start] = true
		out.Attempts++
		wg.Go(func() {
			r := Connect(ctx, req.Request)
			results <- attempt{start, r}
		})
	}
	launch()
	for {
		select {
		case a := <-results:
			delete(inFlight, a.start)
			if a.res.Success == req.Want && (hit == nil || a.start.Before(hit.start)) {
				hit = &a
			} else if hit == nil {
				out.Result = a.res
			}
			if hit != nil && !earlierInFlight(inFlight, hit.start) {
				out.Result, out.Reached, out.At = hit.res, true, hit.start
				return out
			}
		case <-tick.C:
			if hit == nil {
				launch()
			}
		case <-ctx.Done():
			out.Error = fmt.Sprintf("still %s after %s and %d attempts (last: %s)", outcome(!req.Want), req.Within, out.Attempts, out.Error)
			return out
		}
	}
}

// earlierInFlight is whether an attempt started before t is still running.
func earlierInFlight(inFlight map[time.Time]bool, t time.Time) bool {
	for s := range inFlight {
		if s.Before(t) {
			return true
		}
	}
	return false
}

func outcome(reachable bool) string {
	if reachable {
		return "reachable"
	}
	return "unreachable"
}
