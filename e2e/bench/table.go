package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Tests lists the load tests in table order.
var Tests = []string{"TCP_STREAM", "TCP_RR", "TCP_CRR", "UDP_RR"}

// RenderMarkdown writes the report as Markdown: the medians of every
// variant per test and placement, cnilab's ratios to flannel and to the
// limit, where cnilab is behind flannel, and the scale results.
func RenderMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## cnilab bench: kernel %s\n\n", r.Kernel)
	fmt.Fprintf(&b, "Medians of %d interleaved runs of %s each (after %s warm-up), all variants in one run on %d CPUs; higher is better. ", r.Repetitions, r.Duration, r.Warmup, r.CPUs)
	b.WriteString("Ratios are cnilab's median over flannel's (`/fl`) and over the limit's (`/lim`).\n\n")
	variants := present(r.Rows)
	b.WriteString("| test | placement | unit |")
	for _, v := range variants {
		fmt.Fprintf(&b, " %s |", v)
	}
	b.WriteString(" cnilab /fl | cnilab /lim | vxlan /fl | vxlan /lim |\n|---|---|---|")
	b.WriteString(strings.Repeat("---:|", len(variants)+4) + "\n")
	for _, test := range Tests {
		for _, pl := range Placements {
			first, ok := anyRow(r.Rows, test, pl)
			if !ok {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s |", test, pl, first.Unit)
			for _, v := range variants {
				b.WriteString(" " + cellText(r.Rows, test, pl, v) + " |")
			}
			for _, pair := range [][2]string{{VariantCnilab, VariantFlannel}, {VariantCnilab, VariantLimit}, {VariantCnilabVXLAN, VariantFlannel}, {VariantCnilabVXLAN, VariantLimit}} {
				b.WriteString(" " + ratioText(r.Rows, test, pl, pair[0], pair[1]) + " |")
			}
			b.WriteString("\n")
		}
	}
	if lat := latencyRows(r.Rows); len(lat) > 0 {
		b.WriteString("\nLatency of the request/response tests, p50 / p99 in µs (medians over the runs):\n\n| test | placement |")
		for _, v := range variants {
			fmt.Fprintf(&b, " %s |", v)
		}
		b.WriteString("\n|---|---|" + strings.Repeat("---:|", len(variants)) + "\n")
		for _, k := range lat {
			fmt.Fprintf(&b, "| %s | %s |", k[0], k[1])
			for _, v := range variants {
				if row, ok := Find(r.Rows, k[0], k[1], v); ok && row.P50US > 0 {
					fmt.Fprintf(&b, " %s / %s |", num(row.P50US), num(row.P99US))
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
	}
	if behind := Behind(r.Rows); len(behind) > 0 {
		b.WriteString("\n**Where cnilab is behind flannel:**\n\n")
		for _, s := range behind {
			b.WriteString("- " + s + "\n")
		}
	} else if len(r.Rows) > 0 {
		b.WriteString("\ncnilab is at or above flannel on every row.\n")
	}
	renderBaseline(&b, r)
	if errs := failedRuns(r.Rows); len(errs) > 0 {
		b.WriteString("\n**Failed runs** (left out of the medians):\n\n")
		for _, e := range errs {
			b.WriteString("- " + e + "\n")
		}
	}
	if r.Scale != nil {
		renderScale(&b, r.Scale)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range r.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func renderScale(b *strings.Builder, s *Scale) {
	if len(s.Policies) > 0 {
		b.WriteString("\n### cnilab with NetworkPolicies selecting the server\n\n")
		b.WriteString("| policies | applied in | TCP_RR same | TCP_RR cross | TCP_CRR same | TCP_CRR cross | TCP_RR vs 0 | allow delay p50 | deny delay p50 |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		var base []Row
		for _, p := range s.Policies {
			if p.Count == 0 {
				base = p.Rows
			}
		}
		for _, p := range s.Policies {
			fmt.Fprintf(b, "| %d | %.1f s |", p.Count, p.ApplySeconds)
			for _, t := range []string{"TCP_RR", "TCP_CRR"} {
				for _, pl := range Placements {
					b.WriteString(" " + cellText(p.Rows, t, pl, VariantCnilab) + " |")
				}
			}
			vs := "–"
			if base != nil {
				var rs []string
				for _, pl := range Placements {
					cur, ok1 := Find(p.Rows, "TCP_RR", pl, VariantCnilab)
					ref, ok2 := Find(base, "TCP_RR", pl, VariantCnilab)
					if ok1 && ok2 && ref.Median > 0 {
						rs = append(rs, fmt.Sprintf("%.3f×", cur.Median/ref.Median))
					}
				}
				if len(rs) > 0 {
					vs = strings.Join(rs, " / ")
				}
			}
			fmt.Fprintf(b, " %s | %s | %s |\n", vs, msText(p.AllowMS), msText(p.DenyMS))
		}
		b.WriteString("\n`TCP_RR vs 0` is same-node / cross-node TCP_RR over the run with no policies; the delays are from the API call that created (deleted) a policy to the first client connection it let through (dropped), probed every 50 ms.\n")
	}
	if len(s.Bringup) > 0 {
		b.WriteString("\n### Lab bring-up (netns provider)\n\n| CNI | nodes | seconds |\n|---|---:|---:|\n")
		for _, u := range s.Bringup {
			v := fmt.Sprintf("%.1f", u.Seconds)
			if u.Error != "" {
				v = "failed: " + u.Error
			}
			fmt.Fprintf(b, "| %s | %d | %s |\n", u.CNI, u.Nodes, v)
		}
	}
}

// present lists the variants with rows, in table order.
func present(rows []Row) []string {
	var out []string
	for _, v := range allVariants {
		if slices.ContainsFunc(rows, func(r Row) bool { return r.Variant == v }) {
			out = append(out, v)
		}
	}
	return out
}

func anyRow(rows []Row, test, placement string) (Row, bool) {
	for _, r := range rows {
		if r.Test == test && r.Placement == placement {
			return r, true
		}
	}
	return Row{}, false
}

func cellText(rows []Row, test, pl, v string) string {
	r, ok := Find(rows, test, pl, v)
	if !ok {
		return "–"
	}
	if len(r.Runs) == 0 {
		return "failed"
	}
	return num(r.Median)
}

func ratioText(rows []Row, test, pl, a, b string) string {
	x, ok := Ratio(rows, test, pl, a, b)
	if !ok {
		return "–"
	}
	s := fmt.Sprintf("%.2f", x)
	if b == VariantFlannel && x < 1 {
		s = "**" + s + "**"
	}
	return s
}

func msText(ms []float64) string {
	if len(ms) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f ms", Median(ms))
}

func latencyRows(rows []Row) [][2]string {
	var out [][2]string
	for _, t := range Tests {
		for _, pl := range Placements {
			if slices.ContainsFunc(rows, func(r Row) bool { return r.Test == t && r.Placement == pl && r.P50US > 0 }) {
				out = append(out, [2]string{t, pl})
			}
		}
	}
	return out
}

func failedRuns(rows []Row) []string {
	var out []string
	for _, r := range rows {
		for _, e := range r.Errors {
			out = append(out, fmt.Sprintf("%s %s %s: %s", r.Variant, r.Test, r.Placement, e))
		}
	}
	return out
}
