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

func newHoldCmd(stdout io.Writer) *cobra.Command {
	var req probe.HoldRequest
	var proto string
	cmd := &cobra.Command{
		Use:   "hold [--protocol tcp|udp] [--duration 10s] [--interval 100ms] [--timeout 5s] HOST:PORT",
		Short: "Keep one TCP connection (or UDP flow) to a probe server busy and report whether it survived (JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := probe.SplitTarget(args[0]); err != nil {
				return usageErrorf("%v", err)
			}
			if req.Duration <= 0 || req.Interval <= 0 || req.Timeout <= 0 {
				return usageErrorf("--duration, --interval and --timeout must be positive")
			}
			req.Target = args[0]
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			var res probe.HoldResult
			switch proto {
			case "tcp":
				res = probe.Hold(ctx, req)
			case "udp":
				res = probe.HoldUDP(ctx, req)
			default:
				return usageErrorf("--protocol %q: want tcp or udp", proto)
			}
			if err := json.NewEncoder(stdout).Encode(res); err != nil {
				return &exitError{exitFailure, fmt.Errorf("write result: %w", err)}
			}
			if !res.Success {
				return &exitError{exitFailure, nil}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&proto, "protocol", "tcp", "tcp (one connection) or udp (one flow; a datagram without reply counts lost)")
	cmd.Flags().DurationVar(&req.Duration, "duration", 10*time.Second, "how long to keep the connection busy")
	cmd.Flags().DurationVar(&req.Interval, "interval", 100*time.Millisecond, "time between lines")
	cmd.Flags().DurationVar(&req.Timeout, "timeout", 5*time.Second, "longest wait for one echo")
	return cmd
}
