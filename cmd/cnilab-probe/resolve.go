package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/lab/probe"
)

func newResolveCmd(stdout io.Writer) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "resolve [--timeout 3s] NAME",
		Short: "Look NAME up through /etc/resolv.conf (a pod's cluster DNS and search domains) and print the result as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return usageErrorf("--timeout %s: must be positive", timeout)
			}
			res := probe.Resolve(cmd.Context(), args[0], timeout)
			if err := json.NewEncoder(stdout).Encode(res); err != nil {
				return &exitError{exitFailure, fmt.Errorf("write result: %w", err)}
			}
			if !res.Success {
				return &exitError{exitFailure, nil}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", probe.DefaultTimeout, "give up after this long")
	return cmd
}
