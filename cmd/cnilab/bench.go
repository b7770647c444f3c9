package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/e2e/bench"
	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/probe"
)

func benchCommand() *cobra.Command {
	var o bench.Options
	var tests []string
	var output string
	c := &cobra.Command{
		Use:   "bench [--variants cnilab,cnilab-vxlan,flannel,limit] [--tests TCP_RR,...] [--repetitions 5] [--output DIR]",
		Short: "Measure pod→pod throughput and request rates of cnilab, flannel and the bare kernel side by side",
		Long: `Bring up a 2-node netns lab per CNI (cnilab native, cnilab-vxlan, flannel) and
the bare network (the limit: a veth pair, a bare underlay), and run
netperf-style tests (TCP_STREAM, TCP_RR, TCP_CRR, UDP_RR) pod to pod on the
same node and across nodes, every variant interleaved, --repetitions times.
Then, on cnilab, TCP_RR, TCP_CRR and the policy enforcement delay with each
of --policies NetworkPolicies selecting the server, and the bring-up time of
labs of --bringup-nodes nodes. Writes bench.json, bench.md (medians and
ratios to flannel and to the limit) and bench.svg into --output, and prints
bench.md. Needs root; everything it makes is removed at the end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return fmt.Errorf("bench needs root: it creates network namespaces and loads eBPF programs")
			}
			for _, t := range tests {
				m, err := probe.ParseMode(t)
				if err != nil {
					return usageError{fmt.Errorf("--tests: %w", err)}
				}
				o.Tests = append(o.Tests, m)
			}
			var uts unix.Utsname
			if err := unix.Uname(&uts); err == nil {
				o.Kernel = unix.ByteSliceToString(uts.Release[:])
			}
			o.Progress = cmd.ErrOrStderr()
			p, err := lab.NewProvider("netns", cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			o.Provider = p
			rep, err := bench.Run(cmd.Context(), o)
			if rep == nil {
				return err
			}
			if werr := writeBench(output, rep); werr != nil {
				return werr
			}
			var md bytes.Buffer
			_ = bench.RenderMarkdown(&md, rep)
			fmt.Fprint(cmd.OutOrStdout(), md.String())
			fmt.Fprintf(cmd.OutOrStdout(), "\nbench: %.0fs; %s, %s, %s\n", rep.Seconds,
				filepath.Join(output, "bench.json"), filepath.Join(output, "bench.md"), filepath.Join(output, "bench.svg"))
			return err
		},
	}
	f := c.Flags()
	f.StringSliceVar(&o.Variants, "variants", bench.Variants, "variants to compare")
	f.StringSliceVar(&tests, "tests", nil, "tests to run (default TCP_STREAM,TCP_RR,TCP_CRR,UDP_RR)")
	f.IntVar(&o.Repetitions, "repetitions", 5, "runs of every test, placement and variant")
	f.DurationVar(&o.Warmup, "warmup", 500*time.Millisecond, "unmeasured time before each run")
	f.DurationVar(&o.Duration, "duration", 2*time.Second, "measured time of each run")
	o.PolicyCounts, o.BringupNodes = []int{0, 100, 1000}, []int{2, 4, 8}
	f.Var((*intList)(&o.PolicyCounts), "policies", "NetworkPolicy counts for the policy scale, comma-separated (--policies= : none)")
	f.Var((*intList)(&o.BringupNodes), "bringup-nodes", "lab sizes whose bring-up is timed, comma-separated (--bringup-nodes= : none)")
	f.StringVar(&o.Prefix, "prefix", "bench", "name prefix of the labs the bench makes")
	f.BoolVar(&o.NoKubeProxy, "no-kube-proxy", false, "bring the cnilab labs up without kube-proxy (flannel labs always run it)")
	f.StringVar(&o.Baseline, "baseline", "", "another build's _output/bin (e.g. of an older commit): its cnilab-agent and cnilab-cni run as variants cnilab@base and cnilab-vxlan@base, interleaved with this build's, and bench.md compares the two")
	f.BoolVar(&o.NoPause, "no-pause", false, "leave the labs' control planes running during the runs (by default they are paused with SIGSTOP)")
	f.StringVar(&output, "output", "_output/bench", "directory for bench.json, bench.md and bench.svg")
	return c
}

// writeBench writes the report, its table and its plot.
func writeBench(dir string, rep *bench.Report) error {
	if err := bench.Write(dir, rep); err != nil {
		return err
	}
	var md, svg bytes.Buffer
	if err := bench.RenderMarkdown(&md, rep); err != nil {
		return err
	}
	if err := bench.RenderSVG(&svg, rep); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"bench.md": md.Bytes(), "bench.svg": svg.Bytes()} {
		if err := writeFileAtomic(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	return nil
}

// intList is a comma-separated list of non-negative integers whose empty
// value means an empty list (pflag's int slice refuses "").
type intList []int

func (l *intList) String() string {
	parts := make([]string, len(*l))
	for i, v := range *l {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

func (l *intList) Set(s string) error {
	*l = nil
	if strings.TrimSpace(s) == "" {
		return nil
	}
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 0 {
			return fmt.Errorf("%q is not a non-negative integer", p)
		}
		*l = append(*l, v)
	}
	return nil
}

func (l *intList) Type() string { return "ints" }
