package e2e

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnilab/cnilab/datapath/api"
	"github.com/cnilab/cnilab/lab"
)

// agentDownFor is how long the fail-closed spec keeps every agent stopped
// after its checks while they are down have passed.
const agentDownFor = 5 * time.Second

// Fail closed and say so: with every node's agent stopped (SIGKILL on the
// first node, SIGTERM on the second), a new pod's CNI ADD fails with an error
// that names the unreachable agent, existing pods keep forwarding under the
// policy in force when the agents went away (the TCP connection and UDP flow
// do not break, the allowed pair opens new connections, the denied pair
// stays denied at every 100 ms sample), and /healthz answers nothing. Once
// an agent is back, /healthz says 503 until it has reconciled, then 200;
// the new pod then comes up and the policy covers it.
var _ = Describe("Agent down", Label("failclosed", "reliability"), func() {
	It("fails CNI ADD naming the unreachable agent, keeps forwarding under the last policy, and is not ready until reconciled", func(ctx SpecContext) {
		if ok, why := runsCnilab(); !ok {
			Skip("needs the cnilab agent: " + why)
		}
		stopper, ok := cluster.(lab.AgentStopper)
		if !ok {
			Skip("provider " + cluster.Provider() + " cannot stop and start node agents")
		}
		// On real nodes the agent is the DaemonSet's pod: the lab keeps it
		// off the node with the chart's cnilab.io/no-schedule affinity, and
		// the kubelet reports the failed CNI ADD as an event.
		real := env.NodeKind == "real"
		socks, ok := cluster.(lab.AgentSocketer)
		if !ok {
			Skip("provider " + cluster.Provider() + " cannot reach the agents' sockets")
		}
		w := newIsolatedServer(ctx, "failclosed")
		healthz := map[string]*api.Client{}
		for _, n := range w.nodes {
			sock, err := socks.AgentSocket(n)
			Expect(err).NotTo(HaveOccurred())
			healthz[n] = api.NewClient(sock)
			ready, detail, err := healthz[n].Healthz(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(ready).To(BeTrue(), "agent on %s before the spec: %s", n, detail)
		}
		before, err := agentMaps(ctx, socks, w.nodes)
		Expect(err).NotTo(HaveOccurred())

		// The held flows and the denied probes must outlast the agents'
		// absence and their start; checked below.
		window := 45 * time.Second
		if real {
			// A pod's deletion and a new pod's start take longer than a
			// process's.
			window = 90 * time.Second
		}
		flowsStarted := time.Now()
		flows := w.holdFlows(ctx, window)
		denied := w.awaitDenied(ctx, window)
		time.Sleep(2 * time.Second)

		By("stopping every node's agent")
		down := map[string]bool{}
		DeferCleanup(func() {
			for n := range down {
				if err := stopper.StartNodeAgent(n); err != nil {
					GinkgoWriter.Printf("starting the agent on %s after the spec: %v\n", n, err)
				}
			}
		})
		stoppedAt := time.Now()
		for i, n := range w.nodes {
			sig := syscall.SIGTERM
			if i == 0 {
				sig = syscall.SIGKILL
			}
			down[n] = true
			Expect(stopper.StopNodeAgent(n, sig)).To(Succeed(), "stop the agent on %s with %s", n, sig)
		}
		for _, n := range w.nodes {
			_, _, err := healthz[n].Healthz(ctx)
			Expect(errors.Is(err, api.ErrAgentUnreachable)).To(BeTrue(), "/healthz of %s with its agent stopped: want unreachable, got %v", n, err)
		}

		By("a new pod's CNI ADD fails naming the unreachable agent")
		late := ProbePod(w.ns, PodSpec{Name: "late", Node: w.nodes[0], Labels: map[string]string{"role": "allowed"}, Ports: Ports(80)})
		if real {
			// The runtime asks the plugin's STATUS, which fails without the
			// agent: the node turns NotReady (tainted not-ready) naming it,
			// and the kubelet starts no sandbox there. The late pod tolerates
			// the taint so that it lands on the node anyway.
			late.Spec.Tolerations = append(late.Spec.Tolerations, corev1.Toleration{
				Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
		}
		_, err = client.CoreV1().Pods(w.ns).Create(ctx, late, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		var failure string
		if real {
			Eventually(func() string {
				failure = sandboxFailure(ctx, w.ns, "late")
				return failure
			}).WithTimeout(time.Minute).WithPolling(250*time.Millisecond).Should(
				And(Or(HavePrefix("FailedCreatePodSandBox: "), HavePrefix("NetworkNotReady: ")), ContainSubstring("cnilab agent unreachable")),
				"the kubelet's events of the late pod while the agents are down")
			node, err := client.CoreV1().Nodes().Get(ctx, w.nodes[0], metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			GinkgoWriter.Printf("%s while its agent is down: %s\n", w.nodes[0], readyCondition(node))
		} else {
			Eventually(func() string {
				p, err := client.CoreV1().Pods(w.ns).Get(ctx, "late", metav1.GetOptions{})
				if err != nil {
					return err.Error()
				}
				failure = p.Status.Message
				return p.Status.Reason + ": " + p.Status.Message
			}).WithTimeout(time.Minute).WithPolling(250*time.Millisecond).Should(
				And(HavePrefix("SandboxSetupFailed: "), ContainSubstring("cnilab agent unreachable")),
				"the late pod's status while the agents are down")
		}
		GinkgoWriter.Printf("CNI ADD with the agent down: %s\n", failure)
		p, err := client.CoreV1().Pods(w.ns).Get(ctx, "late", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Status.Phase).NotTo(Equal(corev1.PodRunning), "the late pod runs without an agent")

		By("existing pods keep forwarding under the last policy")
		w.expectReach(ctx, "client", true)
		w.expectReach(ctx, "denied", false)
		time.Sleep(agentDownFor)
		downFor := time.Since(stoppedAt)

		By("starting the agents again: /healthz is 503 until reconciled, then 200")
		type readiness struct {
			notReady     int           // 503 answers before the first 200
			unreachable  int           // polls nothing answered
			ready        time.Duration // from start to the first 200
			detail       string        // the first 503's body
			flappedAfter bool          // a 503 after the first 200
		}
		seen := map[string]*readiness{}
		for _, n := range w.nodes {
			seen[n] = &readiness{}
			started := time.Now()
			Expect(stopper.StartNodeAgent(n)).To(Succeed())
			delete(down, n)
			r := seen[n]
			for r.ready == 0 {
				Expect(time.Since(started)).To(BeNumerically("<", 2*time.Minute), "the agent on %s is not ready 2 min after it started: %d × 503 (%s), %d × unreachable", n, r.notReady, r.detail, r.unreachable)
				pctx, cancel := context.WithTimeout(ctx, time.Second)
				ready, detail, err := healthz[n].Healthz(pctx)
				cancel()
				switch {
				case errors.Is(err, api.ErrAgentUnreachable):
					r.unreachable++
				case err != nil:
					Fail(fmt.Sprintf("/healthz of %s: %v", n, err))
				case ready:
					r.ready = time.Since(started)
				default:
					if r.notReady == 0 {
						r.detail = detail
					}
					r.notReady++
				}
				if r.ready == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}
		for _, n := range w.nodes {
			r := seen[n]
			for range 20 {
				ready, _, err := healthz[n].Healthz(ctx)
				if err != nil || !ready {
					r.flappedAfter = true
				}
				time.Sleep(50 * time.Millisecond)
			}
			GinkgoWriter.Printf("%s: /healthz unreachable %d polls, 503 %d polls (%q), ready %s after start\n", n, r.unreachable, r.notReady, r.detail, r.ready.Round(time.Millisecond))
			AddReportEntry("agent ready after start on "+n+" (ms)", r.ready.Milliseconds())
			Expect(r.notReady).To(BeNumerically(">", 0), "/healthz of %s said ready without first saying 503 while it reconciled", n)
			Expect(r.detail).To(ContainSubstring("not ready"), "the 503 body of %s", n)
			Expect(r.flappedAfter).To(BeFalse(), "/healthz of %s fell back from ready within 1 s", n)
		}
		Expect(time.Since(flowsStarted)).To(BeNumerically("<", window-time.Second),
			"the agents were away longer than the held flows and the denied probes ran (%s): they did not cover it", window)
		after, err := agentMaps(ctx, socks, w.nodes)
		Expect(err).NotTo(HaveOccurred())
		for _, n := range w.nodes {
			for _, m := range []string{"endpoints", "lxc", "policy"} {
				Expect(after[n][m]).To(BeNumerically(">=", before[n][m]), "%s map %s after the agent came back (before %d)", n, m, before[n][m])
			}
		}

		By("the new pod comes up once its node's agent is back, under the policy")
		running, err := WaitRunning(ctx, client, w.ns, []string{"late"}, 3*time.Minute)
		Expect(err).NotTo(HaveOccurred(), "the late pod after the agents came back")
		GinkgoWriter.Printf("late pod running at %s (ip %s)\n", running["late"].Status.StartTime, running["late"].Status.PodIP)
		w.expectReach(ctx, "late", true)
		w.expectReach(ctx, "denied", false)

		during := fmt.Sprintf("with every agent stopped for %s", downFor.Round(100*time.Millisecond))
		expectHeld(flows, during)
		expectStillDenied(denied, during)
	}, SpecTimeout(6*time.Minute))
})

// sandboxFailure is "REASON: MESSAGE" of the kubelet's first event that
// pod's sandbox could not be made: FailedCreatePodSandBox (a CNI ADD error)
// or NetworkNotReady (the runtime's CNI STATUS failed, so no ADD was
// tried), or what there is instead.
func sandboxFailure(ctx context.Context, ns, pod string) string {
	evs, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
	if err != nil {
		return err.Error()
	}
	var reasons []string
	for _, e := range evs.Items {
		if e.Reason == "FailedCreatePodSandBox" || e.Reason == "NetworkNotReady" {
			return e.Reason + ": " + e.Message
		}
		reasons = append(reasons, e.Reason+" ("+e.Message+")")
	}
	return fmt.Sprintf("no FailedCreatePodSandBox or NetworkNotReady event yet (events: %v)", reasons)
}

// readyCondition is "Ready=STATUS (REASON: MESSAGE)" of a node.
func readyCondition(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return fmt.Sprintf("Ready=%s (%s: %s)", c.Status, c.Reason, c.Message)
		}
	}
	return "no Ready condition"
}
