package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/e2e/report"
	"github.com/cnilab/cnilab/lab/config"
)

// connectivityLabels are the specs `cnilab connectivity test` runs on a
// cluster it did not make: connectivity, the upstream NetworkPolicy cases and
// observability (which skips where no cnilab agent answers).
const connectivityLabels = "connectivity || (policy && upstream) || observability"

func connectivityCommand() *cobra.Command {
	c := &cobra.Command{Use: "connectivity", Short: "Test a cluster's pod network"}
	var kubeconfig, labels, reportDir, suite string
	test := &cobra.Command{
		Use:   "test [--kubeconfig PATH] [--labels FILTER] [--report DIR]",
		Short: "Run the suite's connectivity, NetworkPolicy and observability specs against a running cluster and print the summary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kubeconfig == "" {
				kubeconfig = os.Getenv("KUBECONFIG")
			}
			if kubeconfig == "" {
				return usageError{fmt.Errorf("no cluster: give --kubeconfig PATH or set KUBECONFIG")}
			}
			if _, err := os.Stat(kubeconfig); err != nil {
				return usageError{fmt.Errorf("kubeconfig: %w", err)}
			}
			if suite == "" {
				bin, _, _ := config.FindBinDirs()
				suite = filepath.Join(bin, "e2e.test")
			}
			if _, err := os.Stat(suite); err != nil {
				return fmt.Errorf("the suite binary %s is missing: build it with 'go test -c -o %s ./e2e' (make e2e does)", suite, suite)
			}
			if err := os.MkdirAll(reportDir, 0o755); err != nil {
				return err
			}
			_ = os.Remove(filepath.Join(reportDir, "report.json"))
			run := exec.CommandContext(cmd.Context(), suite, "-ginkgo.label-filter="+labels, "-ginkgo.timeout=60m", "-test.timeout=60m",
				"-ginkgo.junit-report="+filepath.Join(reportDir, "junit-connectivity.xml"))
			run.Env = append(os.Environ(), "CNILAB_E2E=1", "CNILAB_PROVIDER=existing", "CNILAB_CNI="+config.ExistingCNI,
				"CNILAB_KUBECONFIG="+kubeconfig, "CNILAB_LAB=connectivity-test", "CNILAB_REPORT_DIR="+reportDir)
			run.Stdout, run.Stderr = cmd.ErrOrStderr(), cmd.ErrOrStderr()
			fmt.Fprintf(cmd.ErrOrStderr(), "running %s against %s (labels %q) ...\n", suite, kubeconfig, labels)
			runErr := run.Run()
			f, err := report.Load(reportDir)
			if err != nil || len(f.Runs) == 0 {
				return fmt.Errorf("the suite wrote no report (%v): %v", err, runErr)
			}
			for _, r := range f.Runs {
				report.Summary(cmd.OutOrStdout(), r)
			}
			if runErr != nil {
				return fmt.Errorf("connectivity test failed: %w", runErr)
			}
			return nil
		},
	}
	test.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default $KUBECONFIG)")
	test.Flags().StringVar(&labels, "labels", connectivityLabels, "Ginkgo label filter")
	test.Flags().StringVar(&reportDir, "report", filepath.Join(os.TempDir(), "cnilab-connectivity"), "where the report is written")
	test.Flags().StringVar(&suite, "suite", "", "the e2e.test binary (default: next to cnilab)")
	c.AddCommand(test)
	return c
}
