package policy

import (
	"fmt"
	"strings"
)

// Marks used in truth tables.
const (
	MarkAllowed  = "."
	MarkDenied   = "X"
	MarkUnknown  = "?"
	MarkMismatch = "*"
)

// TableKind says which truth table to render.
type TableKind int

// The truth tables of a Reachability.
const (
	// ExpectedTable shows what the oracle expects.
	ExpectedTable TableKind = iota
	// ObservedTable shows what the probes observed (? where not probed).
	ObservedTable
	// DiffTable shows the observed marks, with * after those that differ
	// from the expectation.
	DiffTable
)

func (k TableKind) String() string {
	return [...]string{"expected", "observed", "diff"}[k]
}

func mark(v, known bool) string {
	switch {
	case !known:
		return MarkUnknown
	case v:
		return MarkAllowed
	default:
		return MarkDenied
	}
}

// cell returns the mark of e in table kind k.
func (r *Reachability) cell(k TableKind, e Edge) string {
	exp := r.Expected[e]
	obs, probed := r.Observed[e]
	switch k {
	case ExpectedTable:
		return mark(exp, true)
	case ObservedTable:
		return mark(obs, probed)
	default:
		if probed && obs != exp {
			return mark(obs, true) + MarkMismatch
		}
		return mark(obs, probed)
	}
}

// Table renders one truth table of r: rows are sources, columns are
// destinations, "." allowed, "X" denied, "?" not probed, "*" a mismatch.
func (r *Reachability) Table(k TableKind) string {
	return renderGrid(r.PortProtocol.String(), r.Pods, func(e Edge) string { return r.cell(k, e) })
}

// String renders the expected, observed and diff tables of r, then lists
// every mismatch with the oracle's explanation.
func (r *Reachability) String() string {
	var b strings.Builder
	_, _, bad := r.Counts()
	fmt.Fprintf(&b, "%s: %d of %d pairs differ from the expectation\n", r.PortProtocol, bad, len(r.Pods)*len(r.Pods))
	for _, k := range []TableKind{ExpectedTable, ObservedTable, DiffTable} {
		fmt.Fprintf(&b, "%s:\n%s", k, r.Table(k))
	}
	for _, e := range r.Mismatches() {
		fmt.Fprintf(&b, "%s -> %s %s: expected %s, observed %s; oracle: %s\n", e.From, e.To, r.PortProtocol,
			word(r.Expected[e]), word(r.Observed[e]), r.Verdicts[e])
	}
	return b.String()
}

func word(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}

// Compact renders several truth tables over the same pods as one table with
// one mark per port/protocol in each cell, in the order of rs; in a
// DiffTable, "*" follows a cell where any mark differs from the expectation.
func Compact(rs []*Reachability, k TableKind) string {
	if len(rs) == 0 {
		return ""
	}
	var names []string
	for _, r := range rs {
		names = append(names, r.PortProtocol.String())
	}
	grid := renderGrid(k.String(), rs[0].Pods, func(e Edge) string {
		var s, star string
		for _, r := range rs {
			c := r.cell(k, e)
			s += c[:1]
			if len(c) > 1 {
				star = MarkMismatch
			}
		}
		return s + star
	})
	return "marks: " + strings.Join(names, " ") + "\n" + grid
}

// renderGrid draws a bordered table with pods as rows and columns and
// corner in the top left cell.
func renderGrid(corner string, pods []string, cell func(Edge) string) string {
	rows := [][]string{append([]string{corner}, pods...)}
	for _, from := range pods {
		row := []string{from}
		for _, to := range pods {
			row = append(row, cell(Edge{from, to}))
		}
		rows = append(rows, row)
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	line := func() {
		for _, w := range widths {
			b.WriteString("+" + strings.Repeat("-", w+2))
		}
		b.WriteString("+\n")
	}
	line()
	for i, row := range rows {
		for j, c := range row {
			fmt.Fprintf(&b, "| %-*s ", widths[j], c)
		}
		b.WriteString("|\n")
		if i == 0 {
			line()
		}
	}
	line()
	return b.String()
}
