package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cnilab/cnilab/e2e"
	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/probe"
)

// Options says what a bench run measures.
type Options struct {
	// Provider makes the labs; it must run them on this machine's kernel
	// (netns), the kernel the limit runs on.
	Provider lab.Provider
	// Variants to compare (default: all of [Variants]).
	Variants []string
	// Tests to run (default: all of [probe.Modes]).
	Tests []probe.Mode
	// Repetitions of every test, placement and variant (default 5).
	Repetitions int
	// Warmup and Duration of one run (default 0.5 s and 2 s).
	Warmup, Duration time.Duration
	// PolicyCounts are the numbers of NetworkPolicies selecting the server
	// the cnilab variant is measured with; none: no policy scale.
	PolicyCounts []int
	// DelayRepetitions is how many times the enforcement delay is measured
	// per policy count (default 3).
	DelayRepetitions int
	// BringupNodes are the lab sizes whose bring-up is timed; none: no
	// bring-up scale.
	BringupNodes []int
	// Prefix names the labs: PREFIX-cnilab, PREFIX-vxlan, … (default "bench").
	Prefix string
	// Progress receives a line per step and per run.
	Progress io.Writer
	// Kernel is the release every variant runs on, for the report.
	Kernel string
	// NoPause leaves the labs' control planes running during the runs.
	NoPause bool
	// NoKubeProxy brings the cnilab labs up without kube-proxy (flannel
	// labs always run it), to tell the datapath's cost from kube-proxy's.
	NoKubeProxy bool
	// Baseline, when set, is another build's _output/bin: its cnilab-agent
	// and cnilab-cni run in labs of their own (variants cnilab@base and
	// cnilab-vxlan@base), interleaved with this build's, to compare the two.
	Baseline string
}

func (o *Options) defaults() error {
	if o.Provider == nil {
		return errors.New("bench: no lab provider")
	}
	if len(o.Variants) == 0 {
		o.Variants = slices.Clone(Variants)
	}
	for _, v := range o.Variants {
		if !slices.Contains(Variants, v) {
			return fmt.Errorf("bench: unknown variant %q: known variants are %v", v, Variants)
		}
	}
	if err := o.addBaselines(); err != nil {
		return err
	}
	if len(o.Tests) == 0 {
		o.Tests = slices.Clone(probe.Modes)
	}
	if o.Repetitions <= 0 {
		o.Repetitions = 5
	}
	if o.Warmup < 0 || o.Duration < 0 {
		return errors.New("bench: warm-up and duration must not be negative")
	}
	if o.Warmup == 0 {
		o.Warmup = 500 * time.Millisecond
	}
	if o.Duration == 0 {
		o.Duration = 2 * time.Second
	}
	if o.DelayRepetitions <= 0 {
		o.DelayRepetitions = 3
	}
	for _, n := range o.PolicyCounts {
		if n < 0 || n > 10000 {
			return fmt.Errorf("bench: policy count %d out of range 0-10000", n)
		}
	}
	if o.Prefix == "" {
		o.Prefix = "bench"
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

// labName is the lab of a variant.
func (o *Options) labName(variant string) string {
	short := map[string]string{VariantCnilab: "cnilab", VariantCnilabVXLAN: "vxlan", VariantFlannel: "flannel", VariantLimit: "limit",
		VariantCnilabBase: "cnilab-base", VariantCnilabVXLANBase: "vxlan-base"}[variant]
	return o.Prefix + "-" + short
}

// target is where one variant's client and server run.
type target interface {
	// exec runs argv on the client of a placement.
	exec(ctx context.Context, placement string, argv []string) (lab.ExecResult, error)
	// server is the server's address as the client of placement reaches it.
	server(placement string) string
}

// Run brings up a lab per variant (and the bare network for the limit),
// runs every test, placement and variant interleaved Repetitions times, then
// the scale measurements, removes everything it made, and returns the
// report.
func Run(ctx context.Context, o Options) (_ *Report, err error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	rep := &Report{Kernel: o.Kernel, Baseline: o.Baseline, Started: time.Now().UTC(), Repetitions: o.Repetitions,
		Warmup: o.Warmup.String(), Duration: o.Duration.String(), CPUs: runtime.NumCPU()}
	targets := map[string]target{}
	var cleanups []func() error
	defer func() {
		rep.Seconds = time.Since(rep.Started).Seconds()
		for i := len(cleanups) - 1; i >= 0; i-- {
			if cerr := cleanups[i](); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	var bringup []BringupScale
	for _, v := range o.Variants {
		start := time.Now()
		fmt.Fprintf(o.Progress, "bench: bringing up %s (%s)\n", v, o.labName(v))
		t, cleanup, err := o.setUp(ctx, v)
		if cleanup != nil {
			cleanups = append(cleanups, cleanup)
		}
		if err != nil {
			return nil, fmt.Errorf("bench: set up %s: %w", v, err)
		}
		targets[v] = t
		if v != VariantLimit {
			bringup = append(bringup, BringupScale{CNI: v, Nodes: 2, Seconds: time.Since(start).Seconds()})
		}
		fmt.Fprintf(o.Progress, "bench: %s ready in %.1fs\n", v, time.Since(start).Seconds())
	}
	rep.Rows = o.measure(ctx, targets, o.Variants, o.Tests, o.Repetitions)
	rep.Notes = append(rep.Notes,
		"The limit runs the same cnilab-probe client and server, in namespaces joined by one veth pair (same node) or over a bridge in an underlay namespace (cross node), MTU 1500, with no routes, rules or programs.",
		"Pods in flannel and cnilab-vxlan labs have an MTU 50 bytes below the underlay's (VXLAN overhead); native cnilab pods use the underlay MTU.",
		"UDP_RR replies carry the server's name (a few bytes), not one byte.")
	if !o.NoPause {
		rep.Notes = append(rep.Notes, "During every run the labs' controller managers, schedulers, node roles and CNI agents were paused with SIGSTOP (API servers and etcd stay up: exec finds pods through them): the datapath forwards without them, and on 2 cores their background work made runs of one variant differ by a third.")
	}
	if len(o.PolicyCounts) > 0 || len(o.BringupNodes) > 0 {
		rep.Scale = &Scale{}
	}
	if len(o.PolicyCounts) > 0 {
		t, ok := targets[VariantCnilab].(*labTarget)
		if !ok {
			return nil, errors.New("bench: policy scale needs the cnilab variant")
		}
		if rep.Scale.Policies, err = o.policyScale(ctx, t); err != nil {
			return rep, err
		}
	}
	// Bring-up scale runs alone: the comparison labs go first.
	for i := len(cleanups) - 1; i >= 0; i-- {
		if cerr := cleanups[i](); cerr != nil {
			return rep, cerr
		}
	}
	cleanups = nil
	if len(o.BringupNodes) > 0 {
		rep.Scale.Bringup = append(bringup, o.bringupScale(ctx)...)
	}
	return rep, nil
}

// measure runs tests × placements × variants reps times, rotating the order
// of the variants every repetition so none always runs first or last.
func (o *Options) measure(ctx context.Context, targets map[string]target, variants []string, tests []probe.Mode, reps int) []Row {
	rows := map[string]*Row{}
	var order []string
	lat := map[string][2][]float64{}
	for r := range reps {
		for _, test := range tests {
			for _, pl := range Placements {
				for i := range variants {
					v := variants[(i+r)%len(variants)]
					key := string(test) + "/" + pl + "/" + v
					row := rows[key]
					if row == nil {
						row = &Row{Test: string(test), Placement: pl, Variant: v, Unit: test.Unit()}
						rows[key] = row
						order = append(order, key)
					}
					res, err := o.runQuiet(ctx, targets[v], test, pl)
					if err != nil {
						row.Errors = append(row.Errors, err.Error())
						fmt.Fprintf(o.Progress, "bench: %d/%d %s %s %s: FAILED: %v\n", r+1, reps, test, pl, v, err)
						continue
					}
					row.Runs = append(row.Runs, res.Value)
					l := lat[key]
					if res.P50US > 0 {
						l[0], l[1] = append(l[0], res.P50US), append(l[1], res.P99US)
						lat[key] = l
					}
					fmt.Fprintf(o.Progress, "bench: %d/%d %-10s %-10s %-12s %10s %s\n", r+1, reps, test, pl, v, num(res.Value), res.Unit)
				}
			}
		}
	}
	var out []Row
	for _, k := range order {
		row := rows[k]
		row.Median = Median(row.Runs)
		row.P50US, row.P99US = Median(lat[k][0]), Median(lat[k][1])
		out = append(out, *row)
	}
	return out
}

// runQuiet runs one load test with every lab's background processes paused
// (see lab.PauseControlPlanes), unless Options.NoPause: on 2 cores, three
// idle control planes otherwise make runs of the same variant differ by a
// third.
func (o *Options) runQuiet(ctx context.Context, t target, test probe.Mode, placement string) (probe.LoadResult, error) {
	if o.NoPause {
		return o.runOne(ctx, t, test, placement)
	}
	var labs []string
	for _, v := range o.Variants {
		if v != VariantLimit {
			labs = append(labs, o.labName(v))
		}
	}
	resume, err := lab.PauseControlPlanes(labs...)
	defer func() {
		if rerr := resume(); rerr != nil {
			fmt.Fprintf(o.Progress, "bench: %v\n", rerr)
		}
	}()
	if err != nil {
		return probe.LoadResult{}, err
	}
	return o.runOne(ctx, t, test, placement)
}

// runOne runs one load test on a target.
func (o *Options) runOne(ctx context.Context, t target, test probe.Mode, placement string) (probe.LoadResult, error) {
	addr := fmt.Sprintf("%s:%d", t.server(placement), serverPort)
	argv := []string{"cnilab-probe", "load", "--mode", string(test), "--warmup", o.Warmup.String(), "--duration", o.Duration.String(), addr}
	ctx, cancel := context.WithTimeout(ctx, o.Warmup+o.Duration+time.Minute)
	defer cancel()
	res, err := t.exec(ctx, placement, argv)
	if err != nil {
		return probe.LoadResult{}, err
	}
	var lr probe.LoadResult
	if jerr := json.Unmarshal(res.Stdout, &lr); jerr != nil {
		return lr, fmt.Errorf("exit %d, no result: %s", res.ExitCode, strings.TrimSpace(string(res.Stdout)+string(res.Stderr)))
	}
	if lr.Error != "" {
		return lr, errors.New(lr.Error)
	}
	if res.ExitCode != 0 || lr.Value <= 0 {
		return lr, fmt.Errorf("exit %d, value %v: %s", res.ExitCode, lr.Value, strings.TrimSpace(string(res.Stderr)))
	}
	return lr, nil
}

// serverPort is the port every server answers on; pods serve 80 and 81.
const serverPort = 80

// The bench workload: one server and a client beside it and one on the
// other node.
const (
	benchNamespace = "bench"
	serverPod      = "server"
	clientSame     = "client-same"
	clientCross    = "client-cross"
)

// setUp makes the lab (or bare network) of a variant with its pods.
func (o *Options) setUp(ctx context.Context, variant string) (target, func() error, error) {
	name := o.labName(variant)
	if variant == VariantLimit {
		_ = o.Provider.Delete(name) // what a killed run left
		b, err := lab.CreateBareNetwork(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		return bareTarget{b}, b.Delete, nil
	}
	_ = o.Provider.Delete(name)
	opts := []lab.Option{lab.WithName(name), lab.WithCNI(cniOf(variant)), lab.WithNodes(2)}
	if isBaseline(variant) {
		opts = append(opts, lab.WithDatapathBinDir(o.Baseline))
	}
	if o.NoKubeProxy && variant != VariantFlannel {
		opts = append(opts, lab.WithKubeProxy(false))
	}
	cl, err := o.Provider.Create(ctx, opts...)
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() error { return o.Provider.Delete(name) }
	t, err := deployWorkload(ctx, cl)
	if err != nil {
		return nil, cleanup, err
	}
	return t, cleanup, nil
}

// labTarget is a lab with the bench workload.
type labTarget struct {
	cl       lab.Cluster
	client   kubernetes.Interface
	serverIP string
}

func (t *labTarget) exec(ctx context.Context, placement string, argv []string) (lab.ExecResult, error) {
	pod := clientCross
	if placement == SameNode {
		pod = clientSame
	}
	return t.cl.ExecPod(ctx, benchNamespace, pod, argv)
}

func (t *labTarget) server(string) string { return t.serverIP }

// deployWorkload creates the bench namespace, the server on the first node,
// a client beside it and one on the second node.
func deployWorkload(ctx context.Context, cl lab.Cluster) (*labTarget, error) {
	nodes := cl.Nodes()
	if len(nodes) < 2 {
		return nil, fmt.Errorf("lab %s has %d nodes, the bench needs 2", cl.Name(), len(nodes))
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", cl.Kubeconfig())
	if err != nil {
		return nil, fmt.Errorf("kubeconfig of %s: %w", cl.Name(), err)
	}
	// Creating a thousand policies at the default 5 requests/s would take
	// minutes.
	cfg.QPS, cfg.Burst = 200, 400
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", cl.Name(), err)
	}
	if err := e2e.CreateNamespace(ctx, c, benchNamespace, nil); err != nil {
		return nil, err
	}
	pods := []*corev1.Pod{
		e2e.ProbePod(benchNamespace, e2e.PodSpec{Name: serverPod, Labels: map[string]string{"app": "bench-server"}, Node: nodes[0].Name, Ports: e2e.Ports(80, 81)}),
		e2e.ProbePod(benchNamespace, e2e.PodSpec{Name: clientSame, Labels: map[string]string{"role": "bench-client", "placement": SameNode}, Node: nodes[0].Name, Ports: e2e.Ports(80)}),
		e2e.ProbePod(benchNamespace, e2e.PodSpec{Name: clientCross, Labels: map[string]string{"role": "bench-client", "placement": CrossNode}, Node: nodes[1].Name, Ports: e2e.Ports(80)}),
	}
	for _, p := range pods {
		if _, err := c.CoreV1().Pods(benchNamespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create pod %s: %w", p.Name, err)
		}
	}
	running, err := e2e.WaitRunning(ctx, c, benchNamespace, []string{serverPod, clientSame, clientCross}, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	return &labTarget{cl: cl, client: c, serverIP: running[serverPod].Status.PodIP}, nil
}

// bareTarget is the limit.
type bareTarget struct{ b *lab.BareNetwork }

func (t bareTarget) exec(ctx context.Context, placement string, argv []string) (lab.ExecResult, error) {
	return t.b.Exec(ctx, placement == SameNode, argv)
}

func (t bareTarget) server(placement string) string { return t.b.Server(placement == SameNode) }

// bringupScale times a cnilab lab of each size in BringupNodes.
func (o *Options) bringupScale(ctx context.Context) []BringupScale {
	var out []BringupScale
	for _, n := range o.BringupNodes {
		name := o.Prefix + "-up"
		_ = o.Provider.Delete(name)
		fmt.Fprintf(o.Progress, "bench: bring-up of a %d-node cnilab lab\n", n)
		start := time.Now()
		_, err := o.Provider.Create(ctx, lab.WithName(name), lab.WithCNI(VariantCnilab), lab.WithNodes(n))
		s := BringupScale{CNI: VariantCnilab, Nodes: n, Seconds: time.Since(start).Seconds()}
		if err != nil {
			s.Error = err.Error()
		}
		if derr := o.Provider.Delete(name); derr != nil && s.Error == "" {
			s.Error = "delete: " + derr.Error()
		}
		fmt.Fprintf(o.Progress, "bench: %d nodes up in %.1fs\n", n, s.Seconds)
		out = append(out, s)
	}
	return out
}
