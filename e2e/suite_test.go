package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes"

	"github.com/cnilab/cnilab/e2e/report"
	"github.com/cnilab/cnilab/lab"
)

var (
	env          Env
	cluster      lab.Cluster
	client       kubernetes.Interface
	setupSeconds float64
	datapathInfo map[string]any
)

func TestE2E(t *testing.T) {
	if os.Getenv("CNILAB_E2E") != "1" {
		t.Skip("the e2e suite brings up a lab cluster: run it with 'make e2e' (sets CNILAB_E2E=1)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the e2e suite needs root to create network namespaces")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "cnilab e2e")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	env = EnvFromOS()
	p, err := lab.NewProvider(env.Provider, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	// A lab of the same name left by an earlier killed run is removed first.
	_ = p.Delete(env.LabName)
	start := time.Now()
	cluster, err = p.Create(ctx, lab.WithName(env.LabName), lab.WithCNI(env.CNI), lab.WithNodes(env.Nodes))
	Expect(err).NotTo(HaveOccurred(), "bring up the lab")
	setupSeconds = time.Since(start).Seconds()
	client, err = cluster.Client()
	Expect(err).NotTo(HaveOccurred())
	if st, ok := cluster.(lab.AgentStatuser); ok {
		if s, err := st.AgentStatus(ctx, cluster.Nodes()[0].Name); err == nil {
			datapathInfo = map[string]any{"attachMode": s["attachMode"], "routingMode": s["routingMode"], "features": s["features"]}
		}
	}
}, NodeTimeout(10*time.Minute))

var _ = AfterSuite(func() {
	if cluster == nil || env.Keep {
		if cluster != nil {
			GinkgoWriter.Printf("keeping lab %s: kubeconfig %s\n", cluster.Name(), cluster.Kubeconfig())
		}
		return
	}
	p, err := lab.NewProvider(env.Provider, nil)
	Expect(err).NotTo(HaveOccurred())
	Expect(p.Delete(cluster.Name())).To(Succeed())
})

var _ = ReportAfterSuite("cnilab report.json", func(r Report) {
	e := EnvFromOS()
	run := report.Run{
		Provider: e.Provider, CNI: e.CNI, Started: r.StartTime, Seconds: r.RunTime.Seconds(),
		SetupSeconds: setupSeconds, LabelFilter: r.SuiteConfig.LabelFilter, Datapath: datapathInfo,
	}
	if cluster != nil {
		run.Kernel = cluster.KernelRelease()
	}
	for _, s := range r.SpecReports {
		if s.LeafNodeType != types.NodeTypeIt {
			// A failed BeforeSuite/AfterSuite fails the run even when every
			// spec passed (e.g. the lab did not come down cleanly).
			if s.State.Is(types.SpecStateFailureStates) {
				run.Failure = strings.TrimSpace(run.Failure + "\n" + s.LeafNodeType.String() + ": " + s.Failure.Message)
			}
			continue
		}
		spec := report.Spec{
			Name: s.FullText(), Labels: s.Labels(), Seconds: s.RunTime.Seconds(),
			Location: s.LeafNodeLocation.String(),
		}
		switch {
		case s.State.Is(types.SpecStatePassed):
			spec.State = report.Passed
		case s.State.Is(types.SpecStateFailureStates):
			spec.State, spec.Reason = report.Failed, s.Failure.Message
		default:
			spec.State = report.Skipped
			spec.Reason = strings.TrimSpace(s.Failure.Message)
			if spec.Reason == "" {
				spec.Reason = "not selected by the label filter"
			}
		}
		run.Specs = append(run.Specs, spec)
	}
	run.Count()
	enforcementMu.Lock()
	run.PolicyEnforcement = report.Summarise(enforcementDelays)
	enforcementMu.Unlock()
	Expect(report.Append(e.ReportDir, run)).To(Succeed())
})
