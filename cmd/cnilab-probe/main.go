// Command cnilab-probe is the pod-side probe of the cnilab lab, like agnhost's
// serve-hostname and connect: "serve" answers on TCP, UDP and SCTP ports with
// a name, "connect" makes one attempt to reach a target and prints the result
// as one JSON line.
//
// Exit codes: 0 success, 1 failed connection or server, 2 usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/lab/probe"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// exitError ends the command with code, printing err if it is not nil.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func usageErrorf(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit code. Errors that
// come from cobra itself (unknown command, bad flag, wrong argument count) are
// usage errors.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitUsage
	var ee *exitError
	if errors.As(err, &ee) {
		code, err = ee.code, ee.err
	}
	if err != nil {
		fmt.Fprintf(stderr, "cnilab-probe: %v\n", err)
	}
	return code
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "cnilab-probe",
		Short:         "Pod-side probe of the cnilab lab: serve a name, connect to a target",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCmd(stderr), newConnectCmd(stdout), newResolveCmd(stdout), newHoldCmd(stdout), newBatchCmd(stdout), newLoadCmd(stdout), newAwaitCmd(stdout),
		&cobra.Command{
			Use:   "features",
			Short: `Print what this kernel supports as JSON, e.g. {"sctp":false}`,
			Args:  cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				return json.NewEncoder(stdout).Encode(probe.DetectFeatures())
			},
		},
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run: func(*cobra.Command, []string) {
				fmt.Fprintf(stdout, "cnilab-probe %s %s\n", version, runtime.Version())
			},
		})
	return root
}

func newServeCmd(stderr io.Writer) *cobra.Command {
	var cfg probe.ServeConfig
	var readyFile string
	cfg.Name, _ = os.Hostname()
	cmd := &cobra.Command{
		Use:   "serve [--name NAME] [--address IP] [--tcp PORTS] [--udp PORTS] [--sctp PORTS]",
		Short: "Answer on TCP, UDP and SCTP ports with a name until SIGTERM or SIGINT",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkServeConfig(cfg); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			s, err := probe.Listen(cfg)
			if err != nil {
				return &exitError{exitFailure, err}
			}
			for _, e := range s.Endpoints() {
				fmt.Fprintf(stderr, "cnilab-probe: serving %q on %s\n", cfg.Name, e)
			}
			if readyFile != "" {
				// Every listener is open: what a readiness probe would see.
				if err := os.WriteFile(readyFile, []byte("ready\n"), 0o644); err != nil {
					s.Close()
					return &exitError{exitFailure, fmt.Errorf("ready file: %w", err)}
				}
			}
			err = s.Serve(ctx)
			fmt.Fprintln(stderr, "cnilab-probe: stopped")
			if err != nil {
				return &exitError{exitFailure, err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", cfg.Name, "the reply (default: the hostname)")
	f.StringVar(&cfg.Address, "address", "", "IP address to listen on (default: all)")
	f.IntSliceVar(&cfg.TCP, "tcp", nil, "TCP ports, comma separated or repeated; 0 picks a free port")
	f.IntSliceVar(&cfg.UDP, "udp", nil, "UDP ports")
	f.IntSliceVar(&cfg.SCTP, "sctp", nil, "SCTP ports")
	f.StringVar(&readyFile, "ready-file", "", "write this file once every listener is open")
	return cmd
}

// checkServeConfig reports usage errors in a serve command line.
func checkServeConfig(cfg probe.ServeConfig) error {
	if cfg.Name == "" {
		return usageErrorf("--name is empty and the hostname is unknown")
	}
	if cfg.Address != "" {
		if _, err := netip.ParseAddr(cfg.Address); err != nil {
			return usageErrorf("--address %q is not an IP address", cfg.Address)
		}
	}
	if len(cfg.TCP)+len(cfg.UDP)+len(cfg.SCTP) == 0 {
		return usageErrorf("no ports: give --tcp, --udp or --sctp")
	}
	for flag, ports := range map[string][]int{"tcp": cfg.TCP, "udp": cfg.UDP, "sctp": cfg.SCTP} {
		for _, p := range ports {
			if p < 0 || p > 65535 {
				return usageErrorf("--%s port %d out of range 0-65535", flag, p)
			}
		}
	}
	return nil
}

func newConnectCmd(stdout io.Writer) *cobra.Command {
	var proto string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "connect [--protocol tcp|udp|sctp|icmp] [--timeout 3s] TARGET",
		Short: "Try once to reach TARGET (host:port, or host for icmp) and print the result as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := connectRequest(proto, args[0], timeout)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			res := probe.Connect(ctx, req)
			if err := json.NewEncoder(stdout).Encode(res); err != nil {
				return &exitError{exitFailure, fmt.Errorf("write result: %w", err)}
			}
			if !res.Success {
				return &exitError{exitFailure, nil}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&proto, "protocol", "tcp", "tcp, udp, sctp or icmp")
	cmd.Flags().DurationVar(&timeout, "timeout", probe.DefaultTimeout, "give up after this long")
	return cmd
}

// connectRequest builds and checks the request of a connect command line.
func connectRequest(proto, target string, timeout time.Duration) (probe.Request, error) {
	p, err := probe.ParseProtocol(proto)
	if err != nil {
		return probe.Request{}, usageErrorf("--protocol: %v", err)
	}
	if timeout <= 0 {
		return probe.Request{}, usageErrorf("--timeout %s: must be positive", timeout)
	}
	req := probe.Request{Protocol: p, Target: target, Timeout: timeout}
	if err := req.Validate(); err != nil {
		return probe.Request{}, &exitError{exitUsage, err}
	}
	return req, nil
}
