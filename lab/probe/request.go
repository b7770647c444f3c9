package probe

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Protocol is a probe protocol.
type Protocol string

// The protocols a probe speaks.
const (
	TCP  Protocol = "tcp"
	UDP  Protocol = "udp"
	SCTP Protocol = "sctp"
	ICMP Protocol = "icmp"
)

// DefaultTimeout is the timeout of a [Request] that sets none.
const DefaultTimeout = 3 * time.Second

// ParseProtocol returns the protocol named s (case-insensitive).
func ParseProtocol(s string) (Protocol, error) {
	switch p := Protocol(strings.ToLower(strings.TrimSpace(s))); p {
	case TCP, UDP, SCTP, ICMP:
		return p, nil
	}
	return "", fmt.Errorf("unknown protocol %q (want tcp, udp, sctp or icmp)", s)
}

// Request is one connection attempt.
type Request struct {
	// Protocol is tcp, udp, sctp or icmp.
	Protocol Protocol
	// Target is host:port for tcp, udp and sctp ("[::1]:80" for IPv6), and a bare
	// host for icmp.
	Target string
	// Timeout bounds the whole attempt; zero means DefaultTimeout.
	Timeout time.Duration
}

// Validate reports whether the request is well formed: a known protocol, a
// target of the right shape and a non-negative timeout.
func (r Request) Validate() error {
	if _, err := ParseProtocol(string(r.Protocol)); err != nil {
		return err
	}
	if r.Timeout < 0 {
		return fmt.Errorf("negative timeout %s", r.Timeout)
	}
	if r.Protocol == ICMP {
		_, err := icmpHost(r.Target)
		return err
	}
	_, _, err := SplitTarget(r.Target)
	return err
}

func (r Request) timeout() time.Duration {
	if r.Timeout == 0 {
		return DefaultTimeout
	}
	return r.Timeout
}

// SplitTarget splits a host:port target and checks that the host is not empty
// and the port is a number from 1 to 65535.
func SplitTarget(target string) (host string, port int, err error) {
	host, ps, err := net.SplitHostPort(target)
	var ae *net.AddrError
	if errors.As(err, &ae) && strings.HasPrefix(ae.Err, "missing port") {
		return "", 0, fmt.Errorf("bad target %q: missing port, want host:port", target)
	}
	if err != nil {
		return "", 0, fmt.Errorf("bad target %q: want host:port", target)
	}
	if host == "" {
		return "", 0, fmt.Errorf("bad target %q: missing host", target)
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("bad target %q: port must be 1-65535", target)
	}
	return host, int(p), nil
}

// icmpHost returns the host of an icmp target, which has no port. Brackets
// around an IPv6 literal are accepted.
func icmpHost(target string) (string, error) {
	h := target
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if h == "" {
		return "", fmt.Errorf("bad icmp target %q: missing host", target)
	}
	if strings.Contains(h, ":") && net.ParseIP(h) == nil {
		return "", fmt.Errorf("bad icmp target %q: want a host without port", target)
	}
	return h, nil
}

// Result is the outcome of a [Request], printed as JSON by cnilab-probe connect.
type Result struct {
	Protocol string `json:"protocol"`
	Target   string `json:"target"`
	// Success is true when the target answered: a reply line over tcp or sctp, a
	// datagram over udp, an echo reply over icmp.
	Success bool `json:"success"`
	// Reply is the server's answer (its name), or for icmp the replying address.
	Reply string `json:"reply"`
	// LatencyMS is how long the attempt took, in milliseconds.
	LatencyMS float64 `json:"latency_ms"`
	// Error says why the attempt failed.
	Error string `json:"error,omitempty"`
}

// Features lists what the probe can do on this kernel; cnilab-probe features
// prints it as JSON.
type Features struct {
	SCTP bool `json:"sctp"`
}

// DetectFeatures probes the running kernel.
func DetectFeatures() Features {
	return Features{SCTP: SCTPSupported()}
}
