package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/e2e"
	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/config"
)

func netpolCommand() *cobra.Command {
	c := &cobra.Command{Use: "netpol", Short: "Probe NetworkPolicies on a lab cluster"}
	c.AddCommand(netpolProbe())
	return c
}

func netpolProbe() *cobra.Command {
	var cni, path, output, name string
	var nodes int
	var keep bool
	var wait time.Duration
	c := &cobra.Command{
		Use:   "probe --cni CNI --policy PATH [--output table|json]",
		Short: "Bring up the standard model, apply each policy file, probe every pair on 80/81 x TCP/UDP/SCTP",
		Long: `For each case (a YAML/JSON file of NetworkPolicy objects, or each such file of a
directory in name order) it applies the policies, waits until the probes match
the oracle (flannel: until nothing is enforced, i.e. at once), records every
probe, and deletes them. Exit status 0 when it ran, whatever it observed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return usageError{fmt.Errorf("--output %q: want table or json", output)}
			}
			if path == "" {
				return usageError{fmt.Errorf("--policy is required")}
			}
			cases, err := e2e.LoadNetpolCases(path)
			if err != nil {
				return usageError{err}
			}
			p, err := lab.NewProvider("netns", cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			cfg := config.Default()
			cfg.Name, cfg.CNI, cfg.Nodes = name, cni, nodes
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			cl, err := p.Create(cmd.Context(), lab.WithConfig(cfg))
			if err != nil {
				return err
			}
			if !keep {
				defer func() { _ = p.Delete(cl.Name()) }()
			}
			rep, err := e2e.RunNetpol(cmd.Context(), cl, cases, e2e.NetpolOptions{
				Enforcing: strings.HasPrefix(cni, "cnilab"), Wait: wait, Progress: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			rep.WriteTables(cmd.OutOrStdout())
			return nil
		},
	}
	c.Flags().StringVar(&cni, "cni", "cnilab", "CNI: "+strings.Join(config.CNIs, ", "))
	c.Flags().StringVar(&path, "policy", "", "a policy file, or a directory of them")
	c.Flags().StringVar(&output, "output", "table", "table or json")
	c.Flags().StringVar(&name, "name", "netpol", "lab name")
	c.Flags().IntVar(&nodes, "nodes", 2, "nodes")
	c.Flags().BoolVar(&keep, "keep", false, "leave the lab up afterwards")
	c.Flags().DurationVar(&wait, "wait", 30*time.Second, "longest wait for a case to be enforced")
	return c
}
