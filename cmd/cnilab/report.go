package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/e2e/report"
)

func reportCommand() *cobra.Command {
	c := &cobra.Command{Use: "report", Short: "Read the reports e2e runs write"}
	c.AddCommand(reportSummary())
	return c
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
