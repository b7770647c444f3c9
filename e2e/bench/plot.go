package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// variantColors are the bar colours, one per variant, as in [Variants].
var variantColors = map[string]string{
	VariantLimit:       "#9e9e9e",
	VariantCnilab:      "#1565c0",
	VariantCnilabVXLAN: "#64b5f6",
	VariantFlannel:     "#ef6c00",
	// The baseline build, paler than this build's.
	VariantCnilabBase:      "#7986cb",
	VariantCnilabVXLANBase: "#b3e5fc",
}

// RenderSVG draws the report as a grouped bar chart: one group per test and
// placement, one bar per variant, each bar its median relative to the
// limit's (1.0 is the kernel with no CNI), labelled with the ratio. The
// tooltip of a bar gives the median and its unit.
func RenderSVG(w io.Writer, r *Report) error {
	variants := present(r.Rows)
	type group struct{ test, placement string }
	var groups []group
	for _, t := range Tests {
		for _, pl := range Placements {
			if _, ok := anyRow(r.Rows, t, pl); ok {
				groups = append(groups, group{t, pl})
			}
		}
	}
	const (
		barW, barGap, groupGap = 22, 3, 34
		left, top, plotH       = 56, 56, 300
		bottom                 = 64
	)
	groupW := len(variants)*(barW+barGap) - barGap
	width := left + len(groups)*(groupW+groupGap) + 20
	height := top + plotH + bottom
	rel := func(g group, v string) (float64, Row, bool) {
		row, ok := Find(r.Rows, g.test, g.placement, v)
		if !ok || len(row.Runs) == 0 {
			return 0, row, false
		}
		ref := 0.0
		if lim, ok := Find(r.Rows, g.test, g.placement, VariantLimit); ok && lim.Median > 0 {
			ref = lim.Median
		} else {
			for _, v := range variants {
				if x, ok := Find(r.Rows, g.test, g.placement, v); ok {
					ref = math.Max(ref, x.Median)
				}
			}
		}
		if ref == 0 {
			return 0, row, false
		}
		return row.Median / ref, row, true
	}
	maxY := 1.2
	for _, g := range groups {
		for _, v := range variants {
			if x, _, ok := rel(g, v); ok {
				maxY = math.Max(maxY, x*1.1)
			}
		}
	}
	y := func(v float64) float64 { return top + plotH - v/maxY*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">cnilab bench, kernel %s: median relative to the limit (higher is better)</text>`+"\n", left, html.EscapeString(r.Kernel))
	// Legend.
	lx := left
	for _, v := range variants {
		fmt.Fprintf(&b, `<rect x="%d" y="32" width="12" height="12" fill="%s"/><text x="%d" y="42">%s</text>`+"\n", lx, variantColors[v], lx+16, v)
		lx += 16 + 8*len(v) + 24
	}
	// Axis and grid.
	for t := 0.0; t <= maxY+1e-9; t += 0.25 {
		yy := y(t)
		stroke := "#e0e0e0"
		if t == 1 {
			stroke = "#616161"
		}
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s"/><text x="%d" y="%.1f" text-anchor="end">%.2f</text>`+"\n",
			left, width-10, yy, yy, stroke, left-6, yy+4, t)
	}
	for i, g := range groups {
		gx := left + groupGap/2 + i*(groupW+groupGap)
		for j, v := range variants {
			x := gx + j*(barW+barGap)
			ratio, row, ok := rel(g, v)
			if !ok {
				fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="middle" font-size="10" fill="#c62828">n/a</text>`+"\n", x+barW/2, y(0)-4)
				continue
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s %s %s: %s %s (%.2f× limit)</title></rect>`+"\n",
				x, y(ratio), barW, y(0)-y(ratio), variantColors[v], v, g.test, g.placement, num(row.Median), row.Unit, ratio)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="middle" font-size="9">%.2f</text>`+"\n", x+barW/2, y(ratio)-3, ratio)
		}
		cx := gx + groupW/2
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-weight="bold">%s</text><text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n",
			cx, top+plotH+18, g.test, cx, top+plotH+34, g.placement)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
