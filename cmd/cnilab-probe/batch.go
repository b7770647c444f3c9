package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/lab/probe"
)

func newBatchCmd(stdout io.Writer) *cobra.Command {
	var timeout time.Duration
	var concurrency int
	cmd := &cobra.Command{
		Use:   "batch [--timeout 1s] [--concurrency 64] PROTOCOL/TARGET...",
		Short: "Probe many targets at once; print one JSON result per line, in order",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 || concurrency < 1 {
				return usageErrorf("--timeout and --concurrency must be positive")
			}
			reqs := make([]probe.Request, 0, len(args))
			for _, a := range args {
				r, err := probe.ParseSpec(a)
				if err != nil {
					return &exitError{exitUsage, err}
				}
				r.Timeout = timeout
				reqs = append(reqs, r)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			enc := json.NewEncoder(stdout)
			for _, r := range probe.ConnectAll(ctx, reqs, concurrency) {
				if err := enc.Encode(r); err != nil {
					return &exitError{exitFailure, fmt.Errorf("write result: %w", err)}
				}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", time.Second, "give up on each probe after this long")
	cmd.Flags().IntVar(&concurrency, "concurrency", 64, "probes in flight at once")
	return cmd
}
