package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Summary writes the one-screen summary of a run: what ran where, the counts,
// the time, and every failure with its reason.
func Summary(w io.Writer, r Run) {
	verdict := "PASS"
	if r.Failed > 0 || r.Failure != "" {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "── cnilab e2e: %s ── provider=%s cni=%s kernel=%s", verdict, r.Provider, r.CNI, r.Kernel)
	if r.LabelFilter != "" {
		fmt.Fprintf(w, " labels=%q", r.LabelFilter)
	}
	fmt.Fprintln(w)
	if r.Nodes != nil {
		fmt.Fprintf(w, "   nodes: %s\n", r.Nodes)
	}
	if r.Datapath != nil {
		fmt.Fprintf(w, "   datapath: attach=%v routing=%v features=%v\n", r.Datapath["attachMode"], r.Datapath["routingMode"], r.Datapath["features"])
	}
	fmt.Fprintf(w, "   %d passed, %d failed, %d skipped in %.1fs", r.Passed, r.Failed, r.Skipped, r.Seconds)
	if r.SetupSeconds > 0 {
		fmt.Fprintf(w, " (lab bring-up %.1fs)", r.SetupSeconds)
	}
	fmt.Fprintln(w)
	if q := r.PolicyEnforcement; q != nil {
		fmt.Fprintf(w, "   policy enforcement (API write to matching probes, %d changes): p50 %.2fs p99 %.2fs max %.2fs\n", q.Samples, q.P50, q.P99, q.Max)
	}
	if r.Failure != "" {
		fmt.Fprintf(w, "   run failed: %s\n", oneLine(r.Failure, 300))
	}
	byLabel := map[string][3]int{}
	for _, s := range r.Specs {
		for _, l := range s.Labels {
			c := byLabel[l]
			switch s.State {
			case Passed:
				c[0]++
			case Failed:
				c[1]++
			default:
				c[2]++
			}
			byLabel[l] = c
		}
	}
	labels := make([]string, 0, len(byLabel))
	for l := range byLabel {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		c := byLabel[l]
		fmt.Fprintf(w, "   %-14s %3d passed %3d failed %3d skipped\n", l, c[0], c[1], c[2])
	}
	for _, s := range r.Specs {
		if s.State == Failed {
			fmt.Fprintf(w, "   ✗ %s\n       %s\n", s.Name, oneLine(s.Reason, 240))
		}
	}
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
