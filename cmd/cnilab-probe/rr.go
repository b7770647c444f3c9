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

func newRRCmd(stdout io.Writer) *cobra.Command {
	var warmup, duration time.Duration
	cmd := &cobra.Command{
		Use:   "rr [--warmup 1s] [--duration 5s] HOST:PORT",
		Short: "TCP request/response (1 byte) against a probe server for a fixed time; prints trans/s and latency as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := probe.SplitTarget(args[0]); err != nil {
				return usageErrorf("%v", err)
			}
			if duration <= 0 || warmup < 0 {
				return usageErrorf("--duration must be positive and --warmup not negative")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			res := probe.RR(ctx, args[0], warmup, duration)
			if err := json.NewEncoder(stdout).Encode(res); err != nil {
				return &exitError{exitFailure, fmt.Errorf("write result: %w", err)}
			}
			if res.Error != "" {
				return &exitError{exitFailure, nil}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&warmup, "warmup", time.Second, "transactions before measuring")
	cmd.Flags().DurationVar(&duration, "duration", 5*time.Second, "how long to measure")
	return cmd
}
