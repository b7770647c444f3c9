package flows

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Filter selects flows; the zero Filter selects all. Set fields must all
// match (AND); fields that name a side (Namespace, Pod, Port) match if
// either side does.
type Filter struct {
	// Namespace: either side's namespace.
	Namespace string
	// Pod: "namespace/name" of either side.
	Pod string
	// Verdict: "FORWARDED" or "DROPPED".
	Verdict string
	// Protocol: "TCP", "UDP", "SCTP" or "ICMPv4".
	Protocol string
	// Port: either side's port.
	Port uint16
	// Since: flows at or after this time.
	Since time.Time
	// Last: only the last Last matching flows (0: all). Follow sends them
	// before new flows.
	Last int
}

// Match tells whether f selects fl.
func (f *Filter) Match(fl *Flow) bool {
	if f.Namespace != "" && fl.Source.Namespace != f.Namespace && fl.Destination.Namespace != f.Namespace {
		return false
	}
	if f.Pod != "" && !isPod(&fl.Source, f.Pod) && !isPod(&fl.Destination, f.Pod) {
		return false
	}
	if f.Verdict != "" && fl.Verdict != f.Verdict {
		return false
	}
	if f.Protocol != "" && fl.Protocol() != f.Protocol {
		return false
	}
	if f.Port != 0 {
		if src, dst := fl.Ports(); src != f.Port && dst != f.Port {
			return false
		}
	}
	return f.Since.IsZero() || !fl.Time.Before(f.Since)
}

func isPod(ep *FlowEndpoint, pod string) bool {
	ns, name, _ := strings.Cut(pod, "/")
	return ep.PodName == name && ep.Namespace == ns
}

// FilterError reports a bad query parameter.
type FilterError struct {
	Param, Value, Reason string
}

func (e *FilterError) Error() string {
	if e.Param == "" {
		return fmt.Sprintf("bad parameter with an empty name (value %q): %s", e.Value, e.Reason)
	}
	return fmt.Sprintf("bad parameter %s=%s: %s", e.Param, e.Value, e.Reason)
}

// ParseFilter reads a Filter from URL query parameters: namespace, pod
// ("ns/name"; a bare name is in the namespace parameter's namespace, else
// "default", as in hubble observe --pod), verdict (forwarded, dropped),
// protocol (tcp, udp, sctp, icmp or icmpv4), port (1-65535), since (RFC
// 3339 time, or a duration such as 5m meaning that long ago) and last
// (count). Values are case-insensitive where they are names. The follow
// parameter is left to the caller; any other parameter, or one given
// twice, is an error. Errors are *FilterError.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	for k, vs := range q {
		if len(vs) != 1 {
			return f, &FilterError{k, strings.Join(vs, ","), "given more than once"}
		}
		if err := f.set(k, vs[0]); err != nil {
			return f, err
		}
	}
	if f.Pod != "" && !strings.Contains(f.Pod, "/") {
		ns := f.Namespace
		if ns == "" {
			ns = "default"
		}
		f.Pod = ns + "/" + f.Pod
	}
	return f, nil
}

func (f *Filter) set(k, v string) error {
	bad := func(reason string) error { return &FilterError{k, v, reason} }
	switch k {
	case "follow":
	case "namespace":
		// A namespace is a DNS label; anything else matches no flow and,
		// with a '/', would make the pod filter ambiguous.
		if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
			return bad("not a namespace name: " + errs[0])
		}
		f.Namespace = v
	case "pod":
		ns, name, ok := strings.Cut(v, "/")
		if !ok {
			ns, name = "", v
		}
		if v == "" || ok && ns == "" {
			return bad("want namespace/name or name")
		}
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return bad("not a pod name: " + errs[0])
		}
		if errs := validation.IsDNS1123Label(ns); ns != "" && len(errs) > 0 {
			return bad("not a namespace name: " + errs[0])
		}
		f.Pod = v
	case "verdict":
		switch u := strings.ToUpper(v); u {
		case "FORWARDED", "DROPPED":
			f.Verdict = u
		default:
			return bad("want FORWARDED or DROPPED")
		}
	case "protocol":
		switch strings.ToUpper(v) {
		case "TCP", "UDP", "SCTP":
			f.Protocol = strings.ToUpper(v)
		case "ICMP", "ICMPV4":
			f.Protocol = "ICMPv4"
		default:
			return bad("want tcp, udp, sctp or icmp")
		}
	case "port":
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 {
			return bad("want a port number 1-65535")
		}
		f.Port = uint16(n)
	case "since":
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			f.Since = t
		} else if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			f.Since = time.Now().Add(-d)
		} else {
			return bad("want an RFC 3339 time or a duration such as 5m")
		}
	case "last":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return bad("want a count of flows")
		}
		f.Last = n
	default:
		return bad("unknown parameter")
	}
	return nil
}
