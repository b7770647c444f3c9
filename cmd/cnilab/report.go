package main

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/e2e/bench"
	"github.com/cnilab/cnilab/e2e/report"
)

func reportCommand() *cobra.Command {
	var inputs []string
	var output, benchDir string
	c := &cobra.Command{
		Use:   "report [--input DIR]... [--output DIR] [--bench DIR]",
		Short: "Merge the reports e2e runs write and render the kernel compatibility report",
		Long: `Merge the report.json of one or more report directories (one per CI matrix
job, say) and write into the output directory:

  report.json  the merged runs
  report.md    a summary for a GitHub job summary (cat it into $GITHUB_STEP_SUMMARY)
  report.html  a self-contained page: the kernel × check matrix, datapath
               features, timings and failures with links to the runs' logs

An input is a report directory, a report.json, or a directory below which
every report.json is merged. Give --input several times or comma-separated.
When --bench holds a bench.json (make bench), the page and the summary get
its plot and table.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return renderReport(cmd, inputs, output, benchDir)
		},
	}
	c.Flags().StringSliceVar(&inputs, "input", []string{"_output/report"}, "report directory, report.json, or directory holding several (repeat or comma-separate to merge)")
	c.Flags().StringVar(&output, "output", "_output/report", "directory to write report.json, report.md and report.html into")
	c.Flags().StringVar(&benchDir, "bench", "_output/bench", "make bench's output directory, linked from the report when it holds a bench.json")
	c.AddCommand(reportSummary())
	return c
}

func renderReport(cmd *cobra.Command, inputs []string, output, benchDir string) error {
	f, err := report.Merge(inputs...)
	if err != nil {
		return err
	}
	if err := f.Rebase(output); err != nil {
		return err
	}
	if err := os.MkdirAll(output, 0o755); err != nil {
		return fmt.Errorf("report output: %w", err)
	}
	// A report rendered where it was written is already the merged one:
	// leave its report.json to the runs that may still be appending to it.
	if len(inputs) != 1 || !sameDir(inputs[0], output) {
		if err := report.Write(output, f); err != nil {
			return err
		}
	}
	var md, page bytes.Buffer
	if err := report.RenderMarkdown(&md, f.Runs); err != nil {
		return err
	}
	perf, benchMD, err := benchSection(benchDir, output)
	if err != nil {
		return err
	}
	md.Write(benchMD)
	if err := report.RenderHTMLWith(&page, f.Runs, perf); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"report.md": md.Bytes(), "report.html": page.Bytes()} {
		if err := writeFileAtomic(filepath.Join(output, name), b); err != nil {
			return err
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%d runs: %s, %s, %s\n", len(f.Runs),
		filepath.Join(output, "report.json"), filepath.Join(output, "report.md"), filepath.Join(output, "report.html"))
	if len(f.Runs) == 0 {
		fmt.Fprintln(cmd.ErrOrStderr(), "cnilab: warning: no runs in the report inputs")
	}
	return nil
}

// sameDir is whether input names the report.json in dir (the directory
// holding it, or the file).
func sameDir(input, dir string) bool {
	a, err1 := filepath.Abs(input)
	b, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	own := filepath.Join(b, "report.json")
	if _, err := os.Stat(own); err != nil {
		return false
	}
	return a == b || a == own
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

func reportSummary() *cobra.Command {
	var input string
	var last int
	c := &cobra.Command{
		Use:   "summary [--input DIR] [--last N]",
		Short: "Print the one-screen summary of the runs in DIR/report.json; fails if any failed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := report.Load(input)
			if err != nil {
				return err
			}
			runs := f.Runs
			if len(runs) == 0 {
				return fmt.Errorf("no runs in %s/report.json: the suite did not get to write its report", input)
			}
			if last > 0 && last < len(runs) {
				runs = runs[len(runs)-last:]
			}
			failed := 0
			for _, r := range runs {
				report.Summary(cmd.OutOrStdout(), r)
				if r.Failed > 0 || r.Failure != "" || r.Passed == 0 {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d runs failed or ran no spec", failed, len(runs))
			}
			return nil
		},
	}
	c.Flags().StringVar(&input, "input", "_output/report", "report directory")
	c.Flags().IntVar(&last, "last", 0, "only the last N runs (0: all)")
	return c
}

// benchSection reads make bench's output in dir, if there is any, for the
// report in output: the HTML section and the Markdown to append.
func benchSection(dir, output string) (*report.Perf, []byte, error) {
	rep, err := bench.Read(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var svg, md bytes.Buffer
	if err := bench.RenderSVG(&svg, rep); err != nil {
		return nil, nil, err
	}
	md.WriteString("\n")
	if err := bench.RenderMarkdown(&md, rep); err != nil {
		return nil, nil, err
	}
	perf := &report.Perf{Kernel: rep.Kernel, SVG: template.HTML(svg.String()), Behind: bench.Behind(rep.Rows)}
	if abs, err := filepath.Abs(filepath.Join(dir, "bench.md")); err == nil {
		if absOut, err := filepath.Abs(output); err == nil {
			if rel, err := filepath.Rel(absOut, abs); err == nil {
				perf.Link = filepath.ToSlash(rel)
			}
		}
	}
	return perf, md.Bytes(), nil
}
