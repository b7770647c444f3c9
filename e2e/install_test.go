package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/manifests"
)

// `cnilab install` against the lab: the manifests are applied for real and
// the command waits for every node's agent to report, ready and in the
// requested routing mode, after the install began. A lab's agents are the
// lab's own processes, not the DaemonSet's pods (lab nodes run no images),
// so the spec restarts them, as a rollout would, and checks that install
// sees them come back; and that it refuses agents in another routing mode.
var _ = Describe("cnilab install", Label("manifests", "install"), func() {
	It("applies the manifests and waits for fresh agent reports in its routing mode", func(ctx SpecContext) {
		if ok, why := runsCnilab(); !ok || cluster.CNI() == config.ExistingCNI {
			Skip("needs a lab running cnilab agents: " + or(why, "CNI "+cluster.CNI()))
		}
		restarter, ok := cluster.(lab.AgentRestarter)
		if !ok {
			Skip("provider " + cluster.Provider() + " cannot restart the agents")
		}
		if env.NodeKind == "real" {
			// There the lab's CNI is this very DaemonSet, installed with the
			// lab's API server address and capabilities; the spec would
			// replace it with the defaults and its clean-up would remove it.
			Skip("on real nodes the lab's own agents are the DaemonSet this spec installs and removes; not written for them yet")
		}
		bin, _, _ := config.FindBinDirs()
		cli := filepath.Join(bin, "cnilab")
		mode, other := "native", "vxlan"
		if cluster.CNI() == "cnilab-vxlan" {
			mode, other = other, mode
		}
		run := func(ctx context.Context, args ...string) (int, string) {
			cmd := exec.CommandContext(ctx, cli, append([]string{"install", "--kubeconfig", cluster.Kubeconfig()}, args...)...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode(), out.String()
			}
			Expect(err).NotTo(HaveOccurred())
			return 0, out.String()
		}
		DeferCleanup(func(ctx SpecContext) {
			c, err := cluster.Client()
			Expect(err).NotTo(HaveOccurred())
			ns := manifests.DefaultNamespace
			_ = c.AppsV1().DaemonSets(ns).Delete(ctx, "cnilab-agent", metav1.DeleteOptions{})
			_ = c.CoreV1().ConfigMaps(ns).Delete(ctx, "cnilab-config", metav1.DeleteOptions{})
			_ = c.CoreV1().ServiceAccounts(ns).Delete(ctx, "cnilab-agent", metav1.DeleteOptions{})
			_ = c.RbacV1().ClusterRoleBindings().Delete(ctx, "cnilab-agent", metav1.DeleteOptions{})
			_ = c.RbacV1().ClusterRoles().Delete(ctx, "cnilab-agent", metav1.DeleteOptions{})
		})

		code, out := run(ctx, "--dry-run", "--mode", mode)
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring("DaemonSet kube-system/cnilab-agent accepted (dry run)"))

		By("installing while the agents restart")
		done := make(chan struct{})
		var installCode int
		var installOut string
		go func() {
			defer GinkgoRecover()
			defer close(done)
			installCode, installOut = run(ctx, "--mode", mode, "--timeout", "2m")
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

		By("refusing agents in another routing mode")
		code, out = run(ctx, "--mode", other, "--timeout", "10s")
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
