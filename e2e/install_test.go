package e2e

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/manifests"
)

// `cnilab install` against the lab: the chart is rendered (printed with
// --dry-run=client, checked by the API server with --dry-run) and applied
// for real, and the command waits for every node's agent to report, ready
// and in the requested routing mode, after the install began. The spec
// restarts the agents meanwhile, as a rollout would, and checks that install
// sees them come back. On light nodes the agents are the lab's own
// processes (light nodes run no images) and the spec also checks that
// install refuses agents in another routing mode; on real nodes they are the
// DaemonSet's pods.
var _ = Describe("cnilab install", Label("manifests", "install"), func() {
	It("applies the manifests and waits for fresh agent reports in its routing mode", func(ctx SpecContext) {
		if ok, why := runsCnilab(); !ok || cluster.CNI() == config.ExistingCNI {
			Skip("needs a lab running cnilab agents: " + or(why, "CNI "+cluster.CNI()))
		}
		restarter, ok := cluster.(lab.AgentRestarter)
		if !ok {
			Skip("provider " + cluster.Provider() + " cannot restart the agents")
		}
		// On real nodes the lab's agents are this very DaemonSet, installed
		// from the chart with the lab's API server address and
		// capabilities: the spec installs it again with those settings (an
		// apply that changes nothing, then a restart as a rollout does) and
		// leaves it in place. On light nodes the DaemonSet runs no pod: the
		// lab's own agents report, and the spec removes what it applied.
		real := env.NodeKind == "real"
		var labArgs []string
		if real {
			labArgs = labInstallArgs(ctx)
		}
		bin, _, _ := config.FindBinDirs()
		cli := filepath.Join(bin, "cnilab")
		mode, other := "native", "vxlan"
		if cluster.CNI() == "cnilab-vxlan" {
			mode, other = other, mode
		}
		install := func(ctx context.Context, args ...string) (int, string) {
			args = append(append([]string{"install", "--kubeconfig", cluster.Kubeconfig()}, labArgs...), args...)
			out, err := run(ctx, nil, cli, args...)
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode(), out
			}
			Expect(err).NotTo(HaveOccurred())
			return 0, out
		}
		DeferCleanup(func(ctx SpecContext) {
			if real {
				return
			}
			c, err := cluster.Client()
			Expect(err).NotTo(HaveOccurred())
			ns := manifests.DefaultNamespace
			_ = c.AppsV1().DaemonSets(ns).Delete(ctx, "cnilab-agent", metav1.DeleteOptions{})
			_ = c.CoreV1().ConfigMaps(ns).Delete(ctx, "cnilab-config", metav1.DeleteOptions{})
			_ = c.CoreV1().ServiceAccounts(ns).Delete(ctx, "cnilab-agent", metav1.DeleteOptions{})
			_ = c.RbacV1().ClusterRoleBindings().Delete(ctx, "cnilab-agent", metav1.DeleteOptions{})
			_ = c.RbacV1().ClusterRoles().Delete(ctx, "cnilab-agent", metav1.DeleteOptions{})
		})

		code, out := install(ctx, "--dry-run=client", "--mode", mode)
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring("kind: DaemonSet"))
		Expect(out).To(ContainSubstring("routing-mode: " + mode))
		code, out = install(ctx, "--dry-run", "--mode", mode)
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring("DaemonSet kube-system/cnilab-agent accepted (dry run)"))

		By("installing while the agents restart")
		done := make(chan struct{})
		var installCode int
		var installOut string
		go func() {
			defer GinkgoRecover()
			defer close(done)
			installCode, installOut = install(ctx, "--mode", mode, "--timeout", "2m")
		}()
		time.Sleep(3 * time.Second) // applied, waiting
		for _, n := range cluster.Nodes() {
			Expect(restarter.RestartNodeAgent(n.Name, syscall.SIGTERM)).To(Succeed())
		}
		Eventually(done).WithTimeout(150 * time.Second).Should(BeClosed())
		Expect(installCode).To(Equal(0), installOut)
		Expect(installOut).To(ContainSubstring("DaemonSet kube-system/cnilab-agent applied"))
		Expect(installOut).To(ContainSubstring("agents ready"))
		Expect(strings.Count(installOut, " ready ")).To(BeNumerically(">=", len(cluster.Nodes())), installOut)

		if real {
			// There, applying the other mode would roll the agents into it.
			return
		}
		By("refusing agents in another routing mode")
		code, out = install(ctx, "--mode", other, "--timeout", "10s")
		Expect(code).To(Equal(1), out)
		Expect(out).To(ContainSubstring("runs another routing mode than " + other))
	})
})

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// labInstallArgs are the `cnilab install` flags that reproduce the settings
// the lab installed its DaemonSet with: the API server the agents reach
// without the kubernetes Service, and whether they may have CAP_SYS_RESOURCE.
func labInstallArgs(ctx context.Context) []string {
	c, err := cluster.Client()
	Expect(err).NotTo(HaveOccurred())
	ds, err := c.AppsV1().DaemonSets(manifests.DefaultNamespace).Get(ctx, "cnilab-agent", metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred(), "the lab's cnilab DaemonSet")
	var args []string
	for _, ctr := range ds.Spec.Template.Spec.Containers {
		if ctr.Name != "agent" {
			continue
		}
		var host, port string
		for _, e := range ctr.Env {
			switch e.Name {
			case "KUBERNETES_SERVICE_HOST":
				host = e.Value
			case "KUBERNETES_SERVICE_PORT":
				port = e.Value
			}
		}
		if host != "" {
			args = append(args, "--api-server", net.JoinHostPort(host, port))
		}
		if sc := ctr.SecurityContext; sc != nil && sc.Capabilities != nil && !slices.Contains(sc.Capabilities.Add, corev1.Capability("SYS_RESOURCE")) {
			args = append(args, "--memlock-capability=false")
		}
	}
	return args
}
