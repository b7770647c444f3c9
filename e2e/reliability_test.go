package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnilab/cnilab/datapath/api"
	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/probe"
)

// agentRestarts is how many times the reliability spec restarts every
// node's agent, SIGTERM and SIGKILL alternately.
const agentRestarts = 20

// The agent is a control plane: while it restarts, the datapath it left in
// the kernel keeps forwarding and enforcing. With a TCP connection and a UDP
// flow running across nodes and a deny policy in force, every node's agent
// restarts 20 times; neither flow may break, the denied pair may not get
// through at any 100 ms sample, and once the pods are gone every state map
// is back to its count before the spec (conntrack at or below it).
var _ = Describe("Agent restarts", Label("restart", "reliability"), func() {
	It(fmt.Sprintf("keep flows, keep denying, and leave no state behind across %d restarts", agentRestarts), func(ctx SpecContext) {
		if ok, why := runsCnilab(); !ok {
			Skip("needs the cnilab agent: " + why)
		}
		restarter, ok := cluster.(lab.AgentRestarter)
		if !ok {
			Skip("provider " + cluster.Provider() + " cannot restart node agents")
		}
		socks, ok := cluster.(lab.AgentSocketer)
		if !ok {
			Skip("provider " + cluster.Provider() + " cannot reach the agents' maps")
		}
		var nodes []string
		for _, n := range cluster.Nodes() {
			nodes = append(nodes, n.Name)
		}
		Expect(len(nodes)).To(BeNumerically(">=", 2))
		mapCounts := func(ctx context.Context) (map[string]map[string]int, error) {
			out := map[string]map[string]int{}
			for _, n := range nodes {
				sock, err := socks.AgentSocket(n)
				if err != nil {
					return nil, err
				}
				m, err := api.NewClient(sock).MapEntries(ctx)
				if err != nil {
					return nil, fmt.Errorf("maps of %s: %w", n, err)
				}
				out[n] = m
			}
			return out, nil
		}
		baseline, err := mapCounts(ctx)
		Expect(err).NotTo(HaveOccurred())

		ns := fmt.Sprintf("reliability-%d", time.Now().UnixNano()%100000)
		Expect(CreateNamespace(ctx, client, ns, map[string]string{"cnilab.io/e2e": "reliability"})).To(Succeed())
		deleted := false
		DeferCleanup(func(ctx SpecContext) {
			if !deleted {
				Expect(DeleteNamespace(ctx, client, ns, 2*time.Minute)).To(Succeed())
			}
		})
		for _, s := range []PodSpec{
			{Name: "server", Node: nodes[1], Labels: map[string]string{"app": "server"}, Ports: Ports(80)},
			{Name: "client", Node: nodes[0], Labels: map[string]string{"role": "allowed"}, Ports: Ports(80)},
			{Name: "denied", Node: nodes[0], Labels: map[string]string{"role": "denied"}, Ports: Ports(80)},
		} {
			_, err := client.CoreV1().Pods(ns).Create(ctx, ProbePod(ns, s), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
		}
		pods, err := WaitRunning(ctx, client, ns, []string{"server", "client", "denied"}, 2*time.Minute)
		Expect(err).NotTo(HaveOccurred())
		// spec.ingress[0].from[0].podSelector: only role=allowed reaches
		// the server; role=denied is denied.
		np := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "allow-client-only", Namespace: ns},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "server"}},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
					{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "allowed"}}},
				}}},
			},
		}
		_, err = client.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		target := net.JoinHostPort(pods["server"].Status.PodIP, "80")
		Eventually(func() bool {
			r, err := Probe(ctx, cluster, From{Namespace: ns, Pod: "denied"}, probe.TCP, target, time.Second)
			return err == nil && !r.Success
		}).WithTimeout(time.Minute).WithPolling(500*time.Millisecond).Should(BeTrue(), "the policy denies denied → server")

		window := time.Duration(agentRestarts)*1500*time.Millisecond + 10*time.Second
		type held struct {
			name string
			argv []string
		}
		runs := []held{
			{"TCP connection", []string{"cnilab-probe", "hold", "--protocol", "tcp", "--duration", window.String(), "--interval", "100ms", "--timeout", "5s", target}},
			{"UDP flow", []string{"cnilab-probe", "hold", "--protocol", "udp", "--duration", window.String(), "--interval", "100ms", "--timeout", "1s", target}},
		}
		type outcome struct {
			name string
			res  probe.HoldResult
			err  error
		}
		results := make(chan outcome, len(runs))
		for _, h := range runs {
			go func() {
				defer GinkgoRecover()
				r, err := cluster.ExecPod(ctx, ns, "client", h.argv)
				o := outcome{name: h.name, err: err}
				if err == nil {
					if jerr := json.Unmarshal(r.Stdout, &o.res); jerr != nil {
						o.err = fmt.Errorf("%s: exit %d: %s%s", h.name, r.ExitCode, r.Stdout, r.Stderr)
					}
				}
				results <- o
			}()
		}
		// The denied pair, probed every 100 ms (attempts overlap), must
		// never get through while the agents restart.
		denied := make(chan probe.AwaitResult, 1)
		go func() {
			defer GinkgoRecover()
			r, err := cluster.ExecPod(ctx, ns, "denied", []string{"cnilab-probe", "await", "--state", "reachable", "--interval", "100ms", "--timeout", "500ms", "--within", window.String(), target})
			Expect(err).NotTo(HaveOccurred())
			var res probe.AwaitResult
			Expect(json.Unmarshal(r.Stdout, &res)).To(Succeed(), "await output %s %s", r.Stdout, r.Stderr)
			denied <- res
		}()
		time.Sleep(2 * time.Second)
		for i := range agentRestarts {
			sig := syscall.SIGTERM
			if i%2 == 1 {
				sig = syscall.SIGKILL
			}
			for _, n := range nodes {
				Expect(restarter.RestartNodeAgent(n, sig)).To(Succeed(), "restart %d (%s) on %s", i+1, sig, n)
			}
			time.Sleep(1500 * time.Millisecond)
		}
		for range runs {
			o := <-results
			Expect(o.err).NotTo(HaveOccurred())
			AddReportEntry(fmt.Sprintf("longest gap on the %s (ms)", o.name), o.res.MaxGapMS)
			GinkgoWriter.Printf("%s across %d restarts: sent %d, answered %d, longest gap %.0f ms\n", o.name, agentRestarts, o.res.Sent, o.res.Echoed, o.res.MaxGapMS)
			Expect(o.res.Success).To(BeTrue(), "%s across %d restarts of every agent: %s", o.name, agentRestarts, o.res.Error)
		}
		d := <-denied
		Expect(d.Reached).To(BeFalse(), "denied → server got through at %s during the restarts (attempt %d)", d.At, d.Attempts)
		GinkgoWriter.Printf("denied pair: %d attempts, none through\n", d.Attempts)

		By("deleting the pods: every state map returns to its baseline")
		Expect(DeleteNamespace(ctx, client, ns, 2*time.Minute)).To(Succeed())
		deleted = true
		var last map[string]map[string]int
		Eventually(func() []string {
			now, err := mapCounts(ctx)
			if err != nil {
				return []string{err.Error()}
			}
			last = now
			var off []string
			for _, n := range nodes {
				for m, before := range baseline[n] {
					after := now[n][m]
					if m == "cnilab_ct" && after <= before || m != "cnilab_ct" && after == before {
						continue
					}
					off = append(off, fmt.Sprintf("%s %s: %d, baseline %d", n, m, after, before))
				}
			}
			return off
		}).WithTimeout(90*time.Second).WithPolling(2*time.Second).Should(BeEmpty(), "state maps after the pods are gone")
		GinkgoWriter.Printf("maps before %v, after %v\n", baseline, last)
	}, SpecTimeout(5*time.Minute))
})
