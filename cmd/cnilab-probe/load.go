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

func newLoadCmd(stdout io.Writer) *cobra.Command {
	var mode string
	var warmup, duration time.Duration
	cmd := &cobra.Command{
		Use:   "load --mode TCP_STREAM|TCP_RR|TCP_CRR|UDP_RR [--warmup 1s] [--duration 5s] HOST:PORT",
		Short: "Run a netperf-style load test against a probe server for a fixed time; print the result as JSON",
		Long: `Run a netperf-style load test against a cnilab-probe server:
  TCP_STREAM  Gbit/s received over one connection
  TCP_RR      1-byte request/response transactions per second on one connection
  TCP_CRR     connect, request, response, close: transactions per second
  UDP_RR      1-byte datagram and its reply: transactions per second
RR modes also print p50 and p99 latency in microseconds.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := probe.ParseMode(mode)
			if err != nil {
				return usageErrorf("--mode: %v", err)
			}
			spec := probe.LoadSpec{Mode: m, Target: args[0], Warmup: warmup, Duration: duration}
			if err := spec.Validate(); err != nil {
				return usageErrorf("%v", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			res := probe.Load(ctx, spec)
			if err := json.NewEncoder(stdout).Encode(res); err != nil {
				return &exitError{exitFailure, fmt.Errorf("write result: %w", err)}
			}
			if res.Error != "" {
				return &exitError{exitFailure, nil}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&mode, "mode", string(probe.TCPRR), "TCP_STREAM, TCP_RR, TCP_CRR or UDP_RR")
	cmd.Flags().DurationVar(&warmup, "warmup", time.Second, "run unmeasured this long first")
	cmd.Flags().DurationVar(&duration, "duration", 5*time.Second, "how long to measure")
	return cmd
}

func newAwaitCmd(stdout io.Writer) *cobra.Command {
	var proto, state string
	var timeout, interval, within time.Duration
	cmd := &cobra.Command{
		Use:   "await [--protocol tcp] --state reachable|unreachable [--interval 50ms] [--within 30s] TARGET",
		Short: "Probe TARGET until it is reachable (or unreachable); print the last result and when the state was reached",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := connectRequest(proto, args[0], timeout)
			if err != nil {
				return err
			}
			if state != "reachable" && state != "unreachable" {
				return usageErrorf("--state %q: want reachable or unreachable", state)
			}
			if interval <= 0 || within <= 0 {
				return usageErrorf("--interval and --within must be positive")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			res := probe.Await(ctx, probe.AwaitRequest{Request: req, Want: state == "reachable", Interval: interval, Within: within})
			if err := json.NewEncoder(stdout).Encode(res); err != nil {
				return &exitError{exitFailure, fmt.Errorf("write result: %w", err)}
			}
			if !res.Reached {
				return &exitError{exitFailure, nil}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&proto, "protocol", "tcp", "tcp, udp, sctp or icmp")
	cmd.Flags().StringVar(&state, "state", "reachable", "reachable or unreachable")
	cmd.Flags().DurationVar(&timeout, "timeout", 200*time.Millisecond, "give up on one attempt after this long")
	cmd.Flags().DurationVar(&interval, "interval", 50*time.Millisecond, "time between attempts")
	cmd.Flags().DurationVar(&within, "within", 30*time.Second, "give up after this long")
	return cmd
}
