package cases

import (
	"testing"

	pol "github.com/cnilab/cnilab/e2e/policy"
)

// TestHandExpectationsAgreeWithOracle checks the hand-written expectations
// of every case (all upstream cases and the generated peer and port
// cases have them) against the oracle.
func TestHandExpectationsAgreeWithOracle(t *testing.T) {
	checked := 0
	for _, c := range AllCases() {
		hand := 0
		for _, s := range c.Steps {
			hand += len(s.Expect)
		}
		if hand == 0 {
			if c.HasTag("upstream") {
				t.Errorf("%s: no hand-written expectation", c.Name)
			}
			continue
		}
		checked++
		if err := pol.CheckExpectations(c, pol.NewStandardModel()); err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d cases carry hand-written expectations", checked)
}

func TestAllCasesValid(t *testing.T) {
	cs := AllCases()
	if err := pol.ValidateCases(cs, pol.NewStandardModel()); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if len(c.Probes(pol.NewStandardModel().WithSyntheticIPs())) == 0 {
			t.Errorf("%s: no probe", c.Name)
		}
		if len(c.Tags) < 2 {
			t.Errorf("%s: tags %v", c.Name, c.Tags)
		}
	}
}

// TestCheckExpectationsCatchesMistakes flips one hand-written expectation
// of every upstream case and checks the cross-check notices.
func TestCheckExpectationsCatchesMistakes(t *testing.T) {
	for _, c := range AllCases() {
		last := len(c.Steps) - 1
		for last >= 0 && len(c.Steps[last].Expect) == 0 {
			last--
		}
		if last < 0 {
			continue
		}
		st := c.Steps[last]
		st.Expect = append([]pol.ExpectRule(nil), st.Expect...)
		// Flip the last rule about other pods: rules on a pod's loopback
		// never apply (loopback is always allowed).
		i := len(st.Expect) - 1
		for i > 0 && st.Expect[i].From == st.Expect[i].To {
			i--
		}
		r := &st.Expect[i]
		r.Allowed = !r.Allowed
		c.Steps = append([]pol.Step(nil), c.Steps...)
		c.Steps[last] = st
		if err := pol.CheckExpectations(c, pol.NewStandardModel()); err == nil {
			t.Errorf("%s: flipping %+v went unnoticed", c.Name, *r)
		}
	}
}
