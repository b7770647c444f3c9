package e2e

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	pol "github.com/cnilab/cnilab/e2e/policy"
	"github.com/cnilab/cnilab/e2e/policy/cases"
	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/lab/probe"
)

// policyCases are the built-in cases plus any in CNILAB_POLICY_CASES (a
// directory of YAML/JSON case files).
func policyCases() []pol.Case {
	cs := cases.AllCases()
	if dir := os.Getenv("CNILAB_POLICY_CASES"); dir != "" {
		extra, err := pol.LoadCases(dir)
		if err != nil {
			panic("CNILAB_POLICY_CASES: " + err.Error())
		}
		cs = append(cs, extra...)
	}
	return cs
}

// enforcesPolicy says whether the CNI under test implements NetworkPolicy;
// flannel does not, and the suite expects exactly that of it (the baseline).
// An existing cluster's CNI is held to NetworkPolicy semantics, as the
// upstream conformance tests hold any cluster: one whose CNI enforces none
// fails these specs, which is the finding.
func enforcesPolicy(cni string) bool {
	return strings.HasPrefix(cni, "cnilab") || cni == config.ExistingCNI
}

// policyAttempts is how often a step's probes are repeated while policy
// propagates before a mismatch fails it: 4, or 8 on the qemu provider, whose
// emulated VMs stall for seconds when the machine is busy.
func policyAttempts() int {
	if EnvFromOS().Provider == "qemu" {
		return 8
	}
	return 4
}

// policyProbeTimeout is how long one probe waits for an answer:
// CNILAB_PROBE_TIMEOUT (a Go duration) if set, else 1 s, or 3 s on the qemu
// provider, whose emulated VMs (TCG) answer a burst of 300 probes slowly.
func policyProbeTimeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("CNILAB_PROBE_TIMEOUT")); err == nil && d > 0 {
		return d
	}
	if EnvFromOS().Provider == "qemu" {
		return 3 * time.Second
	}
	return time.Second
}

var _ = Describe("NetworkPolicy", Label("policy"), Ordered, ContinueOnFailure, func() {
	var model, dirtyModel pol.Model
	var modelDirty bool
	baseline := !enforcesPolicy(EnvFromOS().CNI)

	BeforeAll(func(ctx SpecContext) {
		var err error
		model, err = CreateModel(ctx, client)
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(5*time.Minute))

	AfterAll(func(ctx SpecContext) {
		for _, ns := range ModelNamespaces {
			Expect(DeleteNamespace(ctx, client, ns, 3*time.Minute)).To(Succeed())
		}
	}, NodeTimeout(10*time.Minute))

	for _, c := range policyCases() {
		labels := Label(c.Tags...)
		if baseline {
			labels = Label(append(c.Tags, "baseline")...)
		}
		It(c.Name, labels, func(ctx SpecContext) {
			// A case that failed half-way left the cluster changed: put the
			// standard model back first. (Not with DeferCleanup: Ginkgo runs
			// AfterAll before the last spec's cleanup.)
			if modelDirty {
				var err error
				model, err = ResetModel(ctx, client, dirtyModel)
				Expect(err).NotTo(HaveOccurred(), "reset the model before %s", c.Name)
				modelDirty = false
			}
			state := pol.NewState(model)
			modelDirty, dirtyModel = true, model
			probed := 0
			for i, step := range c.Steps {
				resolved, err := state.Resolve(step)
				Expect(err).NotTo(HaveOccurred())
				Expect(ApplyStep(ctx, client, resolved)).To(Succeed(), "step %d: %s", i, step.ActionName())
				applied := time.Now()
				state, err = state.Apply(step)
				Expect(err).NotTo(HaveOccurred())
				dirtyModel = state.Model
				if step.CreatePod != nil {
					state.Model, err = refreshIPs(ctx, client, state.Model)
					Expect(err).NotTo(HaveOccurred())
				}
				pps := runnableProbes(step.ProbeList())
				if len(pps) == 0 {
					continue
				}
				expected := state
				if baseline {
					expected = pol.NewState(state.Model) // flannel enforces nothing
				}
				var rs []*pol.Reachability
				for attempt := 1; attempt <= policyAttempts(); attempt++ {
					rs = nil
					for _, pp := range pps {
						rs = append(rs, expected.Reachability(pp))
					}
					Expect(ProbeMatrix(ctx, cluster, state.Model, rs, policyProbeTimeout())).To(Succeed())
					if mismatches(rs) == 0 {
						if !baseline && step.ActionName() != "probe" {
							recordEnforcement(time.Since(applied))
						}
						break
					}
					time.Sleep(500 * time.Millisecond)
				}
				probed += len(rs) * len(rs[0].Pods) * len(rs[0].Pods)
				if n := mismatches(rs); n > 0 {
					Fail(truthTables(c, i, step, rs, n))
				}
			}
			var err error
			model, err = ResetModel(ctx, client, state.Model)
			Expect(err).NotTo(HaveOccurred(), "reset the model after %s", c.Name)
			modelDirty = false
			if probed == 0 {
				Skip("every probe of this case needs SCTP, which this kernel lacks")
			}
		}, SpecTimeout(5*time.Minute))
	}
})

// runnableProbes drops SCTP where the kernel has none.
func runnableProbes(pps []pol.PortProtocol) []pol.PortProtocol {
	if probe.SCTPSupported() {
		return pps
	}
	var out []pol.PortProtocol
	for _, pp := range pps {
		if pp.Protocol != corev1.ProtocolSCTP {
			out = append(out, pp)
		}
	}
	return out
}

func mismatches(rs []*pol.Reachability) int {
	n := 0
	for _, r := range rs {
		n += len(r.Mismatches())
	}
	return n
}

func truthTables(c pol.Case, i int, step pol.Step, rs []*pol.Reachability, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: step %d (%s): %d probes differ from the oracle\n", c.Name, i, step.ActionName(), n)
	b.WriteString("expected:\n" + pol.Compact(rs, pol.ExpectedTable))
	b.WriteString("observed:\n" + pol.Compact(rs, pol.ObservedTable))
	b.WriteString("diff (* = mismatch):\n" + pol.Compact(rs, pol.DiffTable))
	for _, r := range rs {
		if len(r.Mismatches()) > 0 {
			b.WriteString(r.String())
		}
	}
	return b.String()
}

// enforcementDelays are, per step that changed something, the time from the
// API write to the end of the first probe round that matched the oracle: an
// upper bound of the enforcement delay (it includes one probe round).
var (
	enforcementMu     sync.Mutex
	enforcementDelays []float64
)

func recordEnforcement(d time.Duration) {
	enforcementMu.Lock()
	defer enforcementMu.Unlock()
	enforcementDelays = append(enforcementDelays, d.Seconds())
}
