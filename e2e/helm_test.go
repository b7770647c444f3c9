package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/manifests"
)

// The charts (manifests/charts) as a user's tools read them: the helm CLI
// built in tools/ lints them and renders them, and kubectl sends what it
// rendered to the lab's API server as a server-side dry run, exactly as
// `helm template … | kubectl apply --dry-run=server -f -` would. The charts
// are the ones embedded in cnilab (manifests.WriteChart), the same files.
var _ = Describe("Helm charts", Label("manifests", "helm"), func() {
	It("pass helm lint --strict and kubectl apply --dry-run=server, and refuse bad values", func(ctx SpecContext) {
		_, tools, _ := config.FindBinDirs()
		helm, kubectl := filepath.Join(tools, "helm"), filepath.Join(tools, "kubectl")
		for _, b := range []string{helm, kubectl} {
			if _, err := os.Stat(b); err != nil {
				Skip(fmt.Sprintf("%s is not built (make tools builds it): %v", b, err))
			}
		}
		dir := GinkgoT().TempDir()
		for _, c := range []string{manifests.CnilabChart, manifests.FlannelChart} {
			Expect(manifests.WriteChart(c, dir)).To(Succeed())
			out, err := run(ctx, nil, helm, "lint", "--strict", filepath.Join(dir, c))
			Expect(err).NotTo(HaveOccurred(), "helm lint %s:\n%s", c, out)
			Expect(out).To(ContainSubstring("1 chart(s) linted, 0 chart(s) failed"))
		}

		// A namespace of the suite's own for the releases: the API server
		// admits nothing, dry run or not, into one that does not exist.
		client, err := cluster.Client()
		Expect(err).NotTo(HaveOccurred())
		ns := "cnilab-e2e-helm"
		_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: NamespaceLabels}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(DeleteNamespace(ctx, client, ns, 2*time.Minute)).To(Succeed())
		}, NodeTimeout(3*time.Minute))

		for _, rel := range []struct {
			chart string
			set   []string
		}{
			{manifests.CnilabChart, nil},
			{manifests.CnilabChart, []string{"routingMode=vxlan", "k8sServiceHost=172.30.0.1", "memlockCapability=false"}},
			{manifests.FlannelChart, []string{"createNamespace=false", "iface=eth0", "installCNIPlugin=false"}},
			{manifests.FlannelChart, []string{"createNamespace=false"}},
		} {
			args := []string{"template", rel.chart, filepath.Join(dir, rel.chart), "--namespace", ns}
			for _, s := range rel.set {
				args = append(args, "--set", s)
			}
			rendered, err := run(ctx, nil, helm, args...)
			Expect(err).NotTo(HaveOccurred(), "helm %s:\n%s", strings.Join(args, " "), rendered)
			docs := strings.Count(rendered, "\nkind: ")
			Expect(docs).To(BeNumerically(">=", 4), "helm %s rendered:\n%s", strings.Join(args, " "), rendered)
			out, err := run(ctx, []byte(rendered), kubectl, "--kubeconfig", cluster.Kubeconfig(), "apply", "--dry-run=server", "-f", "-")
			Expect(err).NotTo(HaveOccurred(), "kubectl apply --dry-run=server of helm %s:\n%s", strings.Join(args, " "), out)
			Expect(strings.Count(out, "(server dry run)")).To(Equal(docs), "kubectl accepted fewer objects than helm rendered:\n%s", out)
		}

		By("refusing values the chart's schema and checks reject, naming them")
		for set, want := range map[string]string{
			"routingMode=geneve":     "value must be one of 'native', 'vxlan'",
			"clusterCIDR=10.244.0.0": `clusterCIDR "10.244.0.0" is not an IPv4 network`,
		} {
			out, err := run(ctx, nil, helm, "template", "cnilab", filepath.Join(dir, manifests.CnilabChart), "--set", set)
			Expect(err).To(HaveOccurred(), "helm template --set %s rendered", set)
			Expect(out).To(ContainSubstring(want))
		}
	}, NodeTimeout(5*time.Minute))
})

// run runs a command with stdin, returning its combined output.
func run(ctx context.Context, stdin []byte, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
