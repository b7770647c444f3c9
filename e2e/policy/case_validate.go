package policy

import (
	"fmt"
	"regexp"
)

// caseName is what a case name may look like: lower-case words, digits and
// . _ / - separators, so names are stable, greppable and usable in
// --focus/--label filters.
var caseName = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]*$`)

// Validate checks c by replaying it on m (pods without IPs get synthetic
// ones, so ipBlock templates resolve): it must have a valid name, steps,
// at most one action per step, valid policies after resolution, actions on
// objects that do or do not exist as required, and valid probes and
// expectations.
func (c Case) Validate(m Model) error {
	if !caseName.MatchString(c.Name) {
		return fmt.Errorf("case %q: name must match %s", c.Name, caseName)
	}
	if len(c.Steps) == 0 {
		return fmt.Errorf("case %s: no steps", c.Name)
	}
	for _, t := range c.Tags {
		if !caseName.MatchString(t) {
			return fmt.Errorf("case %s: tag %q must match %s", c.Name, t, caseName)
		}
	}
	s := NewState(m.WithSyntheticIPs())
	for i, step := range c.Steps {
		next, err := s.Apply(step)
		if err != nil {
			return fmt.Errorf("case %s step %d (%s): %w", c.Name, i, step.ActionName(), err)
		}
		s = State{Model: next.Model.WithSyntheticIPs(), Policies: next.Policies}
		if step.SkipProbes && (len(step.Probes) > 0 || len(step.Expect) > 0) {
			return fmt.Errorf("case %s step %d: skipProbes with probes or expectations", c.Name, i)
		}
		for _, pp := range step.Probes {
			if err := pp.Validate(); err != nil {
				return fmt.Errorf("case %s step %d: probe %w", c.Name, i, err)
			}
		}
		for _, r := range step.Expect {
			if err := r.Validate(); err != nil {
				return fmt.Errorf("case %s step %d: %w", c.Name, i, err)
			}
		}
	}
	if len(c.Probes(m.WithSyntheticIPs())) == 0 {
		return fmt.Errorf("case %s: probes nothing", c.Name)
	}
	return nil
}

// Probes returns every probe c makes when run from m, step after step.
func (c Case) Probes(m Model) Probes {
	var ps Probes
	s := NewState(m)
	for _, step := range c.Steps {
		next, err := s.Apply(step)
		if err != nil {
			return ps
		}
		s = next
		ps = append(ps, NewProbes(s.Model, step.ProbeList())...)
	}
	return ps
}

// ValidateCases validates every case on m and checks that names are unique.
func ValidateCases(cases []Case, m Model) error {
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.Name] {
			return fmt.Errorf("case %s: duplicate name", c.Name)
		}
		seen[c.Name] = true
		if err := c.Validate(m); err != nil {
			return err
		}
	}
	return nil
}
