package policy

import (
	networkingv1 "k8s.io/api/networking/v1"
)

// Edge is an ordered (from pod, to pod) pair of keys.
type Edge struct{ From, To string }

// Reachability is the truth table of one port and protocol over the pods of
// a model: what the oracle expects for every (from, to) pair and, once
// probed, what was observed.
type Reachability struct {
	PortProtocol PortProtocol
	// Pods are the rows (sources) and columns (destinations), in order.
	Pods []string
	// Expected holds the oracle's answer for every pair.
	Expected map[Edge]bool
	// Verdicts explain Expected.
	Verdicts map[Edge]Verdict
	// Observed holds the probed pairs; a missing pair was not probed.
	Observed map[Edge]bool
}

// NewReachability computes the expected truth table of pp for every pair of
// pods in m under policies (valid and resolved).
func NewReachability(policies []networkingv1.NetworkPolicy, m Model, pp PortProtocol) *Reachability {
	r := &Reachability{
		PortProtocol: pp,
		Pods:         m.PodKeys(),
		Expected:     map[Edge]bool{},
		Verdicts:     map[Edge]Verdict{},
		Observed:     map[Edge]bool{},
	}
	for _, from := range m.Pods {
		for _, to := range m.Pods {
			v := Allowed(policies, m, PodTraffic(from, to, pp.Port, pp.Protocol))
			e := Edge{from.Key(), to.Key()}
			r.Expected[e] = v.Allowed
			r.Verdicts[e] = v
		}
	}
	return r
}

// Observe records what a probe from → to observed.
func (r *Reachability) Observe(from, to string, allowed bool) {
	r.Observed[Edge{from, to}] = allowed
}

// Probes returns the probes that fill r's observed table.
func (r *Reachability) Probes() Probes {
	var ps Probes
	for _, from := range r.Pods {
		for _, to := range r.Pods {
			ps = append(ps, Probe{From: from, To: to, Port: r.PortProtocol.Port, Protocol: r.PortProtocol.Protocol})
		}
	}
	return ps
}

// Mismatches returns the observed pairs whose observation differs from the
// expectation, in table order.
func (r *Reachability) Mismatches() []Edge {
	var es []Edge
	for _, from := range r.Pods {
		for _, to := range r.Pods {
			e := Edge{from, to}
			if got, ok := r.Observed[e]; ok && got != r.Expected[e] {
				es = append(es, e)
			}
		}
	}
	return es
}

// Unobserved returns the pairs that were not probed, in table order.
func (r *Reachability) Unobserved() []Edge {
	var es []Edge
	for _, from := range r.Pods {
		for _, to := range r.Pods {
			if _, ok := r.Observed[Edge{from, to}]; !ok {
				es = append(es, Edge{from, to})
			}
		}
	}
	return es
}

// Counts returns how many pairs are expected allowed, expected denied and
// observed differently from expected.
func (r *Reachability) Counts() (allowed, denied, mismatched int) {
	for _, ok := range r.Expected {
		if ok {
			allowed++
		} else {
			denied++
		}
	}
	return allowed, denied, len(r.Mismatches())
}
