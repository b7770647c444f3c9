package report

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
)

// maxMarkdownFailures bounds the failures report.md lists (GitHub job
// summaries are limited in size); report.html lists them all.
const maxMarkdownFailures = 100

// RenderMarkdown writes the report as GitHub-flavoured Markdown, ready for a
// job summary: a header line with the totals, a kernel × CNI table, the
// datapath features each kernel showed, and the failures with their reasons
// and log directories.
func RenderMarkdown(w io.Writer, runs []Run) error {
	m := buildMatrix(runs)
	b := bufio.NewWriter(w)
	passed, failed, skipped, runFailures := m.totals()
	verdict := "✅"
	if !m.ok() {
		verdict = "❌"
	}
	fmt.Fprintf(b, "## %s cnilab kernel compatibility: %s × %s, %s: %d passed, %d failed, %d skipped",
		verdict, plural(len(m.Kernels), "kernel"), plural(len(m.CNIs), "CNI"), plural(len(runs), "run"), passed, failed, skipped)
	if runFailures > 0 {
		fmt.Fprintf(b, ", %s did not complete", plural(runFailures, "run"))
	}
	fmt.Fprint(b, "\n\n")
	if len(runs) == 0 {
		fmt.Fprintln(b, "No runs in the report.")
		return b.Flush()
	}

	fmt.Fprint(b, "### Kernel × CNI\n\n")
	fmt.Fprint(b, "| kernel | release | provider |")
	for _, cni := range m.CNIs {
		fmt.Fprintf(b, " %s |", mdEscape(cni))
	}
	fmt.Fprint(b, "\n|:--|:--|:--|")
	for range m.CNIs {
		fmt.Fprint(b, ":--|")
	}
	fmt.Fprintln(b)
	for _, k := range m.Kernels {
		fmt.Fprintf(b, "| **%s** | %s | %s |", mdEscape(k.Name), mdEscape(k.Release), mdEscape(k.Provider))
		for _, cni := range m.CNIs {
			c := m.cell(k, cni)
			if c == nil {
				fmt.Fprint(b, " — |")
				continue
			}
			mark := "✅"
			if !c.OK() {
				mark = "❌"
			}
			fmt.Fprintf(b, " %s %d / %d / %d", mark, c.Passed, c.Failed, c.Skipped)
			if n := len(c.Failures()); n > 0 {
				fmt.Fprintf(b, " (%s did not complete)", plural(n, "run"))
			}
			if len(c.Runs) > 1 {
				fmt.Fprintf(b, " (%d runs)", len(c.Runs))
			}
			fmt.Fprint(b, " |")
		}
		fmt.Fprintln(b)
	}
	fmt.Fprint(b, "\nCells: passed / failed / skipped checks. Several runs of one CNI on one kernel are merged: a check that failed in any of them counts as failed.\n\n")

	fmt.Fprint(b, "### Datapath features per kernel\n\n")
	fmt.Fprint(b, "| kernel | provider | CNI | attach mode | routing |")
	for _, f := range knownFeatures {
		fmt.Fprintf(b, " %s |", f.Title)
	}
	fmt.Fprint(b, " boot s |\n|:--|:--|:--|:--|:--|")
	for range knownFeatures {
		fmt.Fprint(b, ":-:|")
	}
	fmt.Fprintln(b, "--:|")
	for _, fr := range featureRows(m) {
		fmt.Fprintf(b, "| **%s** %s | %s | %s |", mdEscape(fr.Kernel.Name), mdEscape(fr.Kernel.Release), mdEscape(fr.Kernel.Provider), mdEscape(strings.Join(fr.CNIs, ", ")))
		if !fr.HasDatapath {
			fmt.Fprint(b, " no datapath report | |")
		} else {
			fmt.Fprintf(b, " %s | %s |", orDash(mdEscape(fr.Attach)), orDash(mdEscape(fr.Routing)))
		}
		for _, v := range fr.Features {
			fmt.Fprintf(b, " %s |", mdFeature(v))
		}
		fmt.Fprintf(b, " %s |\n", orDash(fr.Boot))
	}

	fs := failures(m)
	if len(fs) == 0 {
		fmt.Fprint(b, "\n### Failures\n\nNone.\n")
		return b.Flush()
	}
	fmt.Fprintf(b, "\n### Failures (%d)\n\n", len(fs))
	for i, f := range fs {
		if i == maxMarkdownFailures {
			fmt.Fprintf(b, "- … and %d more: see report.html\n", len(fs)-i)
			break
		}
		where := fmt.Sprintf("**%s · %s**", mdEscape(f.Kernel.Name), mdEscape(f.CNI))
		what := "run did not complete"
		if f.Name != "" {
			what = fmt.Sprintf("%s: %s", mdEscape(f.Group), mdEscape(f.Name))
		}
		fmt.Fprintf(b, "- ❌ %s %s — %s", where, what, mdEscape(oneLine(f.Reason, 240)))
		if f.LogDir != "" {
			fmt.Fprintf(b, " ([logs](%s))", linkPath(f.LogDir))
		}
		fmt.Fprintln(b)
	}
	return b.Flush()
}

// mdEscape makes text safe inside a Markdown table cell or list item: no
// markup, no raw HTML, no line breaks.
func mdEscape(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '\\', '`', '*', '_', '[', ']', '|', '#', '~':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func mdFeature(v string) string {
	switch v {
	case "yes":
		return "✓"
	case "no":
		return "✗"
	case "":
		return "—"
	}
	return mdEscape(v)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// linkPath is a log directory as a URL reference: relative paths stay
// relative, absolute ones become file URLs.
func linkPath(dir string) string {
	p := filepath.ToSlash(dir)
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	if filepath.IsAbs(dir) {
		return (&url.URL{Scheme: "file", Path: p}).String()
	}
	return (&url.URL{Path: p}).String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
