package probe

import (
	"context"
	"errors"
	"net"
	"slices"
	"time"
)

// ResolveResult is one name lookup through the resolver configuration of
// the caller (/etc/resolv.conf: a pod's cluster DNS, its search domains and
// ndots), as `cnilab-probe resolve` prints it.
type ResolveResult struct {
	Name      string   `json:"name"`
	Success   bool     `json:"success"`
	Addresses []string `json:"addresses,omitempty"` // sorted
	// NotFound: a server answered that the name does not exist (NXDOMAIN
	// or no address), which is an answer; Timeout: no server answered.
	NotFound  bool    `json:"notFound,omitempty"`
	Timeout   bool    `json:"timeout,omitempty"`
	Error     string  `json:"error,omitempty"`
	ElapsedMS float64 `json:"elapsedMs"`
}

// Resolve looks name up with Go's own resolver (which reads
// /etc/resolv.conf as libc does), giving up after timeout.
func Resolve(ctx context.Context, name string, timeout time.Duration) ResolveResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	addrs, err := (&net.Resolver{PreferGo: true}).LookupHost(ctx, name)
	r := ResolveResult{Name: name, ElapsedMS: float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		r.Error = err.Error()
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			r.NotFound = dnsErr.IsNotFound
			r.Timeout = dnsErr.IsTimeout
		}
		if ctx.Err() != nil {
			r.Timeout = true
		}
		return r
	}
	slices.Sort(addrs)
	r.Success, r.Addresses = true, addrs
	return r
}
