package cases

import (
	"fmt"
	"strings"
	"testing"

	pol "github.com/cnilab/cnilab/e2e/policy"
)

func TestCatalogSize(t *testing.T) {
	cs := AllCases()
	if len(cs) < 200 {
		t.Errorf("%d cases, want at least 200", len(cs))
	}
	counts := TagCounts(cs)
	var lines []string
	for _, tag := range Tags(cs) {
		lines = append(lines, fmt.Sprintf("%s=%d", tag, counts[tag]))
	}
	t.Logf("%d cases; by tag: %s", len(cs), strings.Join(lines, " "))
	for _, tag := range []string{"upstream", "generated", "ingress", "egress", "named-port", "ipblock", "update", "sctp", "udp", "icmp", "endport", "conflict", "match-expressions", "pod-lifecycle", "labels", "defaulting", "self", "except", "and", "or"} {
		if counts[tag] == 0 {
			t.Errorf("no case tagged %s", tag)
		}
	}
}

// TestCasesDoSomething checks that every case denies something at some
// step, except those whose point is that nothing is denied (tagged
// allow-all).
func TestCasesDoSomething(t *testing.T) {
	var idle []string
	for _, c := range AllCases() {
		s := pol.NewState(pol.NewStandardModel().WithSyntheticIPs())
		denies := false
		for _, st := range c.Steps {
			next, err := s.Apply(st)
			if err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			s = pol.State{Model: next.Model.WithSyntheticIPs(), Policies: next.Policies}
			for _, r := range s.Reachabilities(st) {
				if _, d, _ := r.Counts(); d > 0 {
					denies = true
				}
			}
		}
		if !denies && !c.HasTag("allow-all") {
			idle = append(idle, c.Name)
		}
	}
	if len(idle) > 0 {
		t.Errorf("cases that deny nothing and are not tagged allow-all: %v", idle)
	}
}
