package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The baseline variants: cnilab and cnilab-vxlan labs running another
// build's agent and CNI plugin (Options.Baseline), measured interleaved with
// this build's so a change to the datapath can be judged in one run.
const (
	VariantCnilabBase      = VariantCnilab + "@base"
	VariantCnilabVXLANBase = VariantCnilabVXLAN + "@base"
)

// baselineOf maps a cnilab variant to its baseline variant.
var baselineOf = map[string]string{VariantCnilab: VariantCnilabBase, VariantCnilabVXLAN: VariantCnilabVXLANBase}

// allVariants is every variant in table order, baselines after their build.
var allVariants = []string{VariantLimit, VariantCnilab, VariantCnilabBase, VariantCnilabVXLAN, VariantCnilabVXLANBase, VariantFlannel}

// cniOf is the lab CNI a variant runs.
func cniOf(variant string) string { return strings.TrimSuffix(variant, "@base") }

// isBaseline says whether a variant runs the baseline build.
func isBaseline(variant string) bool { return strings.HasSuffix(variant, "@base") }

// addBaselines checks Options.Baseline and adds the baseline variant of each
// cnilab variant being measured.
func (o *Options) addBaselines() error {
	if o.Baseline == "" {
		return nil
	}
	for _, b := range []string{"cnilab-agent", "cnilab-cni"} {
		st, err := os.Stat(filepath.Join(o.Baseline, b))
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("bench: baseline %s has no executable %s: give another build's _output/bin", o.Baseline, b)
		}
	}
	var added []string
	for _, v := range o.Variants {
		if b, ok := baselineOf[v]; ok && !slices.Contains(o.Variants, b) {
			added = append(added, b)
		}
	}
	if len(added) == 0 {
		return fmt.Errorf("bench: --baseline needs the cnilab or cnilab-vxlan variant among %v", o.Variants)
	}
	o.Variants = append(o.Variants, added...)
	return nil
}

// BaselineRow compares one row of this build with the same row of the
// baseline build.
type BaselineRow struct {
	Test, Placement, Variant string
	// Ratio is this build's median over the baseline's.
	Ratio float64
	// Spread and BaseSpread are each side's range of runs over its median
	// ((max-min)/median): the noise between repetitions.
	Spread, BaseSpread float64
	// Verdict is "falls" when every run of this build is below every run
	// of the baseline, "rises" for the opposite, else "within noise".
	Verdict string
}

// CompareBaseline pairs every row of cnilab and cnilab-vxlan with its
// baseline row.
func CompareBaseline(rows []Row) []BaselineRow {
	var out []BaselineRow
	for _, r := range rows {
		b, ok := baselineOf[r.Variant]
		if !ok || len(r.Runs) == 0 {
			continue
		}
		base, ok := Find(rows, r.Test, r.Placement, b)
		if !ok || len(base.Runs) == 0 || base.Median == 0 || r.Median == 0 {
			continue
		}
		c := BaselineRow{Test: r.Test, Placement: r.Placement, Variant: r.Variant, Ratio: r.Median / base.Median,
			Spread: spread(r), BaseSpread: spread(base), Verdict: "within noise"}
		switch {
		case slices.Max(r.Runs) < slices.Min(base.Runs):
			c.Verdict = "falls"
		case slices.Min(r.Runs) > slices.Max(base.Runs):
			c.Verdict = "rises"
		}
		out = append(out, c)
	}
	return out
}

// spread is a row's range of runs over its median.
func spread(r Row) float64 {
	if len(r.Runs) == 0 || r.Median == 0 {
		return 0
	}
	return (slices.Max(r.Runs) - slices.Min(r.Runs)) / r.Median
}

// renderBaseline writes the table of this build over the baseline.
func renderBaseline(b *strings.Builder, r *Report) {
	cmp := CompareBaseline(r.Rows)
	if len(cmp) == 0 {
		return
	}
	fmt.Fprintf(b, "\n### This build over the baseline (%s)\n\n", r.Baseline)
	b.WriteString("Both builds ran in the same run, interleaved. `spread` is a row's range of runs over its median. A row *falls* (or *rises*) only when every run of one build is below every run of the other; anything else is within the noise.\n\n")
	b.WriteString("| variant | test | placement | this / base | spread this | spread base | verdict |\n|---|---|---|---:|---:|---:|---|\n")
	for _, c := range cmp {
		v := c.Verdict
		if v == "falls" {
			v = "**falls**"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %.2f | ±%.0f%% | ±%.0f%% | %s |\n", c.Variant, c.Test, c.Placement, c.Ratio, 50*c.Spread, 50*c.BaseSpread, v)
	}
}
