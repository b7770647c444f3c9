package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/e2e/bench"
	"github.com/cnilab/cnilab/e2e/soak"
	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/config"
)

func soakCommand() *cobra.Command {
	var o soak.Options
	var output string
	c := &cobra.Command{
		Use:   "soak [--cycles 100] [--cnis cnilab,flannel] [--kills 10] [--output DIR]",
		Short: "Bring labs up and down many times, kill e2e runs with SIGKILL, and check that nothing is left behind",
		Long: `Cycle a 2-node netns lab with --pods pods up and down --cycles times per CNI,
then run --kill-command --kills times, SIGKILL it at a random moment between
--kill-after and twice that, and remove every lab as 'cnilab lab down --all'
does. After every cycle and kill: no network namespace, host link, mount,
bpffs pin, process or state file of a lab may be left. Kills remove every
lab on this machine: run them on a machine where no other lab is up.
Writes soak.json into --output; fails on any leak or failed cycle.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return fmt.Errorf("soak needs root: it creates network namespaces")
			}
			p, err := lab.NewProvider("netns", nil)
			if err != nil {
				return err
			}
			o.Provider, o.DownAll, o.Progress = p, p.DeleteAll, cmd.ErrOrStderr()
			start := time.Now()
			res, err := soak.Run(cmd.Context(), o)
			if res == nil {
				return err
			}
			if werr := os.MkdirAll(output, 0o755); werr != nil {
				return werr
			}
			b, _ := json.MarshalIndent(res, "", "  ")
			if werr := writeFileAtomic(filepath.Join(output, "soak.json"), append(b, '\n')); werr != nil {
				return werr
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "soak: %d cycles (%s), %d kills, %d leaks, %d failed cycles in %.0fs\n",
				res.Cycles, o.CNIs, res.Kills, len(res.Leaks), len(res.Failures), time.Since(start).Seconds())
			if len(res.Seconds) > 0 {
				fmt.Fprintf(out, "soak: seconds per cycle: median %.1f, max %.1f\n", bench.Median(res.Seconds), slices.Max(res.Seconds))
			}
			for _, l := range res.Leaks {
				fmt.Fprintln(out, "leak: "+l)
			}
			for _, f := range res.Failures {
				fmt.Fprintln(out, "failed: "+f)
			}
			if err != nil {
				return err
			}
			if len(res.Leaks)+len(res.Failures) > 0 {
				return fmt.Errorf("soak found %d leaks and %d failures (%s)", len(res.Leaks), len(res.Failures), filepath.Join(output, "soak.json"))
			}
			return nil
		},
	}
	f := c.Flags()
	f.IntVar(&o.Cycles, "cycles", 100, "lab up/down cycles per CNI")
	f.StringSliceVar(&o.CNIs, "cnis", []string{"cnilab", "flannel"}, "CNIs to cycle")
	f.IntVar(&o.Pods, "pods", 6, "pods per cycle")
	f.IntVar(&o.Kills, "kills", 10, "runs of --kill-command killed with SIGKILL")
	f.StringSliceVar(&o.KillCommand, "kill-command", []string{"make", "e2e", "CNI=cnilab,flannel", "LABELS=connectivity"}, "the command to kill (comma-separated argv)")
	f.DurationVar(&o.KillAfter, "kill-after", 20*time.Second, "kill between this long and twice this long after the start")
	f.StringVar(&o.Name, "name", "soak", "name of the soak's lab")
	f.StringVar(&o.NodeKind, "node-kind", config.DefaultNodeKind("netns"), "node kind of the cycled labs: real (containerd and the kubelet, the CNI as a DaemonSet) or light")
	f.StringVar(&output, "output", "_output/soak", "directory for soak.json")
	return c
}
