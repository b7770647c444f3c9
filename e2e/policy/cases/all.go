package cases

import (
	"sort"

	pol "github.com/cnilab/cnilab/e2e/policy"
)

// AllCases returns every case of the catalog, in a stable order: upstream,
// generated, conflicts, updates.
func AllCases() []pol.Case {
	var cs []pol.Case
	for _, f := range []func() []pol.Case{upstreamCases, generatedCases, conflicts, updates} {
		cs = append(cs, f()...)
	}
	return cs
}

// WithTag returns the cases of cs that carry tag.
func WithTag(cs []pol.Case, tag string) []pol.Case {
	var out []pol.Case
	for _, c := range cs {
		if c.HasTag(tag) {
			out = append(out, c)
		}
	}
	return out
}

// TagCounts returns how many cases of cs carry each tag.
func TagCounts(cs []pol.Case) map[string]int {
	n := map[string]int{}
	for _, c := range cs {
		for _, t := range c.Tags {
			n[t]++
		}
	}
	return n
}

// Tags returns the tags of cs, sorted.
func Tags(cs []pol.Case) []string {
	var ts []string
	for t := range TagCounts(cs) {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}
