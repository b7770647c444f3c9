package probe

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// ParseSpec reads a batch probe spec "PROTOCOL/TARGET", e.g. "tcp/10.0.0.5:80"
// or "icmp/10.0.0.5".
func ParseSpec(spec string) (Request, error) {
	proto, target, ok := strings.Cut(spec, "/")
	if !ok {
		return Request{}, fmt.Errorf("probe spec %q: want PROTOCOL/TARGET, e.g. tcp/10.0.0.5:80", spec)
	}
	p, err := ParseProtocol(proto)
	if err != nil {
		return Request{}, fmt.Errorf("probe spec %q: %w", spec, err)
	}
	r := Request{Protocol: p, Target: target}
	if err := r.Validate(); err != nil {
		return Request{}, fmt.Errorf("probe spec %q: %w", spec, err)
	}
	return r, nil
}

// ConnectAll runs every request, at most concurrency at a time, and returns
// the results in request order. One exec into a pod can so run a whole row of
// a reachability matrix, with denied probes timing out in parallel.
func ConnectAll(ctx context.Context, reqs []Request, concurrency int) []Result {
	if concurrency < 1 {
		concurrency = 1
	}
	out := make([]Result, len(reqs))
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = Connect(ctx, r)
		}()
	}
	wg.Wait()
	return out
}
