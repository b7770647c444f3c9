package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
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
	nodeInfo     *report.NodeInfo
	bootSeconds  float64
	keptLogs     string
	datapathInfo map[string]any
)

func TestE2E(t *testing.T) {
	if os.Getenv("CNILAB_E2E") != "1" {
		t.Skip("the e2e suite brings up a lab cluster: run it with 'make e2e' (sets CNILAB_E2E=1)")
	}
	if p := EnvFromOS().Provider; os.Geteuid() != 0 && (p == "netns" || p == "qemu") {
		t.Fatalf("the e2e suite needs root to create network namespaces (provider %s)", p)
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
	opts := []lab.Option{lab.WithName(env.LabName), lab.WithCNI(env.CNI), lab.WithNodes(env.Nodes)}
	if env.Kernel != "" {
		opts = append(opts, lab.WithKernel(env.Kernel))
	}
	if env.Kubeconfig != "" {
		opts = append(opts, lab.WithKubeconfig(env.Kubeconfig))
	}
	if env.Provider == "netns" || env.Provider == "qemu" {
		opts = append(opts, lab.WithKubeProxy(env.KubeProxy))
	}
	if env.NodeKind != "" {
		opts = append(opts, lab.WithNodeKind(env.NodeKind))
	}
	cluster, err = p.Create(ctx, opts...)
	Expect(err).NotTo(HaveOccurred(), "bring up the lab")
	// What the suite creates is labelled as this lab's: on an existing
	// cluster only that is ever removed.
	NamespaceLabels = lab.OwnerLabels(cluster)
	setupSeconds = time.Since(start).Seconds()
	client, err = cluster.Client()
	Expect(err).NotTo(HaveOccurred())
	for _, s := range lab.BootSeconds(cluster) {
		bootSeconds = max(bootSeconds, s)
	}
	if st, ok := cluster.(lab.AgentStatuser); ok {
		if s, err := st.AgentStatus(ctx, cluster.Nodes()[0].Name); err == nil {
			datapathInfo = map[string]any{"attachMode": s["attachMode"], "routingMode": s["routingMode"], "features": s["features"]}
		}
	}
	recordKernelFeatures(ctx)
	nodeInfo = describeNodes(ctx)
}, NodeTimeout(10*time.Minute))

var _ = AfterSuite(func(ctx SpecContext) {
	if cluster != nil {
		// Keep the lab's logs beside the report so a failure can be read
		// after the lab is gone.
		rel := filepath.Join("logs", runID(env))
		if err := lab.CollectLogs(ctx, cluster, filepath.Join(env.ReportDir, rel)); err != nil {
			GinkgoWriter.Printf("keeping logs: %v\n", err)
		}
		keptLogs = rel
	}
	if cluster == nil || env.Keep {
		if cluster != nil {
			GinkgoWriter.Printf("keeping lab %s: kubeconfig %s\n", cluster.Name(), cluster.Kubeconfig())
		}
		return
	}
	p, err := lab.NewProvider(env.Provider, nil)
	Expect(err).NotTo(HaveOccurred())
	Expect(p.Delete(cluster.Name())).To(Succeed())
}, NodeTimeout(2*time.Minute))

// recordKernelFeatures adds what the nodes' kernel offers the suite (SCTP)
// to the run's datapath facts, for every CNI.
func recordKernelFeatures(ctx SpecContext) {
	r, err := cluster.ExecNode(ctx, cluster.Nodes()[0].Name, []string{"cnilab-probe", "features"})
	if err != nil || r.ExitCode != 0 {
		GinkgoWriter.Printf("kernel features: %v %s\n", err, r.Stderr)
		return
	}
	var f map[string]any
	if json.Unmarshal(r.Stdout, &f) != nil {
		return
	}
	if datapathInfo == nil {
		datapathInfo = map[string]any{}
	}
	feats, _ := datapathInfo["features"].(map[string]any)
	if feats == nil {
		feats = map[string]any{}
	}
	for k, v := range f {
		feats[k] = v
	}
	datapathInfo["features"] = feats
}

// runID names a run's files: provider, kernel and CNI.
func runID(e Env) string {
	k := e.Kernel
	if k == "" {
		k = "host"
	}
	return e.Provider + "-" + k + "-" + e.CNI
}

var _ = ReportAfterSuite("cnilab report.json", func(r Report) {
	e := EnvFromOS()
	run := report.Run{
		Provider: e.Provider, CNI: e.CNI, Started: r.StartTime, Seconds: r.RunTime.Seconds(),
		SetupSeconds: setupSeconds, LabelFilter: r.SuiteConfig.LabelFilter, Datapath: datapathInfo,
		KernelName: e.Kernel, BootSeconds: bootSeconds, LogDir: keptLogs, Nodes: nodeInfo,
	}
	if run.KernelName == "" {
		run.KernelName = "host"
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
