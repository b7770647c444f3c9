package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
)

//go:embed report.html.tmpl
var htmlTemplateText string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"add": func(a, b int) int { return a + b },
}).Parse(htmlTemplateText))

// RenderHTML writes the report as one self-contained HTML page (inline CSS,
// no scripts, no external assets): a coloured kernel × check matrix with a
// section per CNI, the datapath features and timings of every kernel, and
// every failure with its reason and a link to its run's logs.
func RenderHTML(w io.Writer, runs []Run) error {
	return RenderHTMLWith(w, runs, nil)
}

// Perf is the performance section of the page: make bench's plot and where
// its table is.
type Perf struct {
	// Kernel the bench ran on.
	Kernel string
	// SVG is the plot, inlined (it is cnilab's own output, not user input).
	SVG template.HTML
	// Link is the bench table (bench.md), relative to the page.
	Link string
	// Behind lists where cnilab was behind flannel.
	Behind []string
}

// RenderHTMLWith is RenderHTML with a performance section when perf is not
// nil.
func RenderHTMLWith(w io.Writer, runs []Run, perf *Perf) error {
	m := htmlModel(runs)
	m.Perf = perf
	return htmlTemplate.Execute(w, m)
}

type htmlPage struct {
	OK                                   bool
	Kernels, CNIs, Runs                  string
	Passed, Failed, Skipped, RunFailures int
	Span                                 string
	Groups                               []htmlGroup
	Columns                              []htmlColumn
	Sections                             []htmlSection
	FeatureTitles                        []string
	Features                             []htmlFeature
	HasOther                             bool
	Timings                              []htmlTiming
	Failures                             []htmlFailures
	FailureCount                         int
	Perf                                 *Perf
}

type htmlGroup struct {
	Label, Note string
	Span        int
}

type htmlColumn struct {
	Title, Full, Group string
	Aggregate, First   bool
	Names              []string
}

type htmlSection struct {
	CNI  string
	Rows []htmlRow
}

type htmlRow struct {
	Kernel  kernelKey
	Modes   string
	Summary htmlCell
	Cells   []htmlCell
}

type htmlCell struct {
	Class, Text, Sub, Title string
	First, Agg              bool
}

type htmlFeature struct {
	featureRow
	CNIList string
}

type htmlTiming struct {
	Kernel                       kernelKey
	CNI, Attach, Filter          string
	Passed, Failed, Skipped      int
	Setup, Boot, Seconds, Policy string
	Log                          template.URL
	Failure                      bool
}

type htmlFailures struct {
	Kernel kernelKey
	CNI    string
	Open   bool
	Items  []htmlFailure
}

type htmlFailure struct {
	Group, Name, Reason, Full string
	Log                       template.URL
}

func htmlModel(runs []Run) htmlPage {
	m := buildMatrix(runs)
	p := htmlPage{
		OK:      m.ok(),
		Kernels: plural(len(m.Kernels), "kernel"),
		CNIs:    plural(len(m.CNIs), "CNI"),
		Runs:    plural(len(runs), "run"),
	}
	p.Passed, p.Failed, p.Skipped, p.RunFailures = m.totals()
	if len(m.order) > 0 {
		first, last := m.order[0].Started, m.order[0].Started
		for _, r := range m.order {
			if r.Started.Before(first) {
				first = r.Started
			}
			if r.Started.After(last) {
				last = r.Started
			}
		}
		if !first.IsZero() {
			p.Span = "runs started " + first.UTC().Format("2006-01-02 15:04") + " – " + last.UTC().Format("2006-01-02 15:04 MST")
		}
	}

	var cols []column
	for _, g := range m.Groups {
		note := plural(g.Checks, "check")
		if g.Collapsed {
			note += ", collapsed"
		}
		p.Groups = append(p.Groups, htmlGroup{Label: g.Label, Note: note, Span: len(g.Columns)})
		for i, c := range g.Columns {
			cols = append(cols, c)
			p.Columns = append(p.Columns, htmlColumn{Title: c.Title, Full: c.Full, Group: g.Label, Aggregate: c.Aggregate, First: i == 0, Names: c.Names})
		}
	}

	for _, cni := range m.CNIs {
		sec := htmlSection{CNI: cni}
		for _, k := range m.Kernels {
			c := m.cell(k, cni)
			if c == nil {
				continue
			}
			row := htmlRow{Kernel: k, Modes: modes(c), Summary: summaryCell(c)}
			for i, col := range cols {
				hc := checkCell(c, col)
				hc.First = p.Columns[i].First
				row.Cells = append(row.Cells, hc)
			}
			sec.Rows = append(sec.Rows, row)
		}
		p.Sections = append(p.Sections, sec)
	}

	for _, f := range knownFeatures {
		p.FeatureTitles = append(p.FeatureTitles, f.Title)
	}
	for _, fr := range featureRows(m) {
		p.Features = append(p.Features, htmlFeature{featureRow: fr, CNIList: strings.Join(fr.CNIs, ", ")})
		p.HasOther = p.HasOther || fr.Other != ""
	}

	for _, r := range m.order {
		t := htmlTiming{Kernel: rowOf(*r), CNI: r.CNI, Attach: mapString(r.Datapath, "attachMode"), Filter: r.LabelFilter,
			Setup: secs(r.SetupSeconds), Boot: secs(r.BootSeconds), Seconds: secs(r.Seconds), Failure: r.Failure != ""}
		t.Passed, t.Failed, t.Skipped = counts(*r)
		if q := r.PolicyEnforcement; q != nil {
			t.Policy = fmt.Sprintf("%.2f / %.2f (%d)", q.P50, q.P99, q.Samples)
		}
		if r.LogDir != "" {
			t.Log = template.URL(linkPath(r.LogDir))
		}
		p.Timings = append(p.Timings, t)
	}

	fs := failures(m)
	p.FailureCount = len(fs)
	for _, f := range fs {
		n := len(p.Failures)
		if n == 0 || p.Failures[n-1].Kernel != f.Kernel || p.Failures[n-1].CNI != f.CNI {
			p.Failures = append(p.Failures, htmlFailures{Kernel: f.Kernel, CNI: f.CNI})
			n++
		}
		hf := htmlFailure{Group: f.Group, Name: f.Name, Reason: oneLine(f.Reason, 400), Full: f.Reason}
		if f.Name == "" {
			hf.Group, hf.Name = "run", "the run did not complete"
		}
		if f.LogDir != "" {
			hf.Log = template.URL(linkPath(f.LogDir))
		}
		p.Failures[n-1].Items = append(p.Failures[n-1].Items, hf)
	}
	for i := range p.Failures {
		p.Failures[i].Open = len(p.Failures[i].Items) <= 25
	}
	return p
}

// modes are the attach modes of a cell's runs ("tcx", "tcx, tc").
func modes(c *cell) string {
	var out []string
	for _, r := range c.Runs {
		if a := mapString(r.Datapath, "attachMode"); a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return strings.Join(out, ", ")
}

// countCell is a cell of counts: "passed/ran", with "N skipped" below when
// some were. Its class is pass, or part where some were skipped: the caller
// sets any other.
func countCell(passed, failed, skipped int) htmlCell {
	h := htmlCell{Text: fmt.Sprintf("%d/%d", passed, passed+failed), Class: "pass"}
	if skipped > 0 {
		h.Sub, h.Class = fmt.Sprintf("%d skipped", skipped), "part"
	}
	return h
}

func summaryCell(c *cell) htmlCell {
	ran := c.Passed + c.Failed
	h := countCell(c.Passed, c.Failed, c.Skipped)
	var title []string
	title = append(title, fmt.Sprintf("%s · %s: %d passed, %d failed, %d skipped", c.Kernel, c.CNI, c.Passed, c.Failed, c.Skipped))
	for _, r := range c.Runs {
		title = append(title, "run: "+runTag(r))
	}
	for _, f := range c.Failures() {
		title = append(title, "run did not complete: "+oneLine(f, 300))
	}
	switch {
	case len(c.Failures()) > 0 && ran == 0:
		h.Class, h.Text = "fail", "run failed"
	case !c.OK() && c.Failed == 0 && len(c.Failures()) == 0:
		h.Class = "skip"
	case !c.OK():
		h.Class = "fail"
	}
	h.Title = strings.Join(title, "\n")
	return h
}

func checkCell(c *cell, col column) htmlCell {
	where := c.Kernel.String() + " · " + c.CNI
	if !col.Aggregate {
		res := c.Results[col.Names[0]]
		h := htmlCell{Title: where + "\n" + col.Full + "\n"}
		switch {
		case res == nil:
			h.Class, h.Title = "none", h.Title+"not in this run"
		case res.State == Passed:
			h.Class, h.Title = "pass", h.Title+fmt.Sprintf("passed in %.1fs", res.Seconds)
		case res.State == Failed:
			h.Class, h.Text, h.Title = "fail", "✗", h.Title+"FAILED: "+oneLine(res.Reason, 600)
		default:
			h.Class, h.Title = "skip", h.Title+"skipped: "+oneLine(res.Reason, 300)
		}
		return h
	}
	a := c.aggregate(col)
	ran := a.Passed + a.Failed
	h := countCell(a.Passed, a.Failed, a.Skipped)
	h.Agg = true
	title := []string{where, fmt.Sprintf("%s: %d passed, %d failed, %d skipped of %d", col.Full, a.Passed, a.Failed, a.Skipped, len(col.Names))}
	if a.Missing > 0 {
		title[1] += fmt.Sprintf(" (%d not in this run)", a.Missing)
	}
	switch {
	case a.Failed > 0:
		h.Class = "fail"
		title = append(title, "failed:")
		for i, n := range a.FailedNames {
			if i == 40 {
				title = append(title, fmt.Sprintf("… and %d more", len(a.FailedNames)-i))
				break
			}
			title = append(title, "✗ "+n)
		}
	case ran == 0 && a.Skipped == 0:
		h.Class, h.Text = "none", ""
	case ran == 0:
		h.Class, h.Text, h.Sub = "skip", "skipped", ""
	}
	h.Title = strings.Join(title, "\n")
	return h
}

func secs(s float64) string {
	if s <= 0 {
		return ""
	}
	return fmt.Sprintf("%.1f", s)
}
