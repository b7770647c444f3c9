package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// ExpectRule is a hand-written expectation in the style of the upstream
// suite's Reachability.ExpectPeer: it sets the expectation of every pair
// whose source matches From and destination matches To. Rules apply in
// order over a table that starts all allowed.
//
// Patterns are "ns/pod", with "*" for any namespace or any pod ("x/*",
// "*/a"); "*" alone is any pod.
type ExpectRule struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Allowed bool   `json:"allowed"`
	// Ports limits the rule to these ports and protocols; empty is all.
	// (Not "on": YAML 1.1 reads that key as the boolean true.)
	Ports []PortProtocol `json:"ports,omitempty"`
}

// matchPattern reports whether pod key matches pattern.
func matchPattern(pattern, key string) bool {
	if pattern == "*" {
		pattern = "*/*"
	}
	ok, err := path.Match(pattern, key)
	return err == nil && ok
}

// Validate checks the rule's patterns and ports.
func (r ExpectRule) Validate() error {
	for _, p := range []string{r.From, r.To} {
		if p != "*" {
			if _, _, err := SplitKey(p); err != nil {
				return fmt.Errorf("expect pattern: %w", err)
			}
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("expect pattern %q: %w", p, err)
		}
	}
	for _, pp := range r.Ports {
		if err := pp.Validate(); err != nil {
			return fmt.Errorf("expect ports: %w", err)
		}
	}
	return nil
}

// ExpectedByRules returns the table rules state for pp over pods.
func ExpectedByRules(rules []ExpectRule, pods []string, pp PortProtocol) map[Edge]bool {
	t := map[Edge]bool{}
	for _, from := range pods {
		for _, to := range pods {
			t[Edge{from, to}] = true
		}
	}
	for _, r := range rules {
		if len(r.Ports) > 0 && !slices.Contains(r.Ports, pp) {
			continue
		}
		for e := range t {
			// Loopback is always allowed (see Allowed): rules never apply
			// to a pod's traffic to itself.
			if e.From != e.To && matchPattern(r.From, e.From) && matchPattern(r.To, e.To) {
				t[e] = r.Allowed
			}
		}
	}
	return t
}

// Covers reports whether some rule of rules applies to pp, i.e. whether
// the rules state an expectation for pp at all.
func Covers(rules []ExpectRule, pp PortProtocol) bool {
	for _, r := range rules {
		if len(r.Ports) == 0 || slices.Contains(r.Ports, pp) {
			return true
		}
	}
	return false
}

// CheckExpectations replays c on m (pods without IPs get synthetic ones)
// and compares the hand-written expectations of every step with the
// oracle, for every probed port and protocol the rules cover. It returns
// an error listing the truth tables that disagree.
func CheckExpectations(c Case, m Model) error {
	s := NewState(m.WithSyntheticIPs())
	var bad []string
	for i, step := range c.Steps {
		next, err := s.Apply(step)
		if err != nil {
			return fmt.Errorf("case %s step %d: %w", c.Name, i, err)
		}
		s = State{Model: next.Model.WithSyntheticIPs(), Policies: next.Policies}
		for _, pp := range step.ProbeList() {
			if !Covers(step.Expect, pp) {
				continue
			}
			r := s.Reachability(pp)
			r.Observed = ExpectedByRules(step.Expect, r.Pods, pp)
			if len(r.Mismatches()) > 0 {
				bad = append(bad, fmt.Sprintf("step %d (observed = hand-written):\n%s", i, r))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("case %s: the oracle disagrees with the hand-written expectations:\n%s", c.Name, strings.Join(bad, "\n"))
	}
	return nil
}
