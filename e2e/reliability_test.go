package e2e

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/cnilab/cnilab/lab"
)

// agentRestarts is how many times the reliability spec restarts every
// node's agent, SIGTERM and SIGKILL alternately.
const agentRestarts = 20

// The agent is a control plane: while it restarts, the datapath it left in
// the kernel keeps forwarding and enforcing. With a TCP connection and a UDP
// flow running across nodes and a deny policy in force, every node's agent
// restarts 20 times; neither flow may break, the denied pair may not get
// through at any 100 ms sample, and once the pods are gone no state of
// theirs is left (stateLeftBy).
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
		nodes := make([]string, 0, 2)
		for _, n := range cluster.Nodes() {
			nodes = append(nodes, n.Name)
		}
		baseline, err := agentMaps(ctx, socks, nodes)
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("maps before the spec: %v\n", baseline)
		// Every veth-owner entry belongs to an endpoint: more owners than
		// endpoints is state an earlier spec's pods left behind.
		for _, n := range nodes {
			Expect(baseline[n]["cnilab_lxc"]).To(Equal(baseline[n]["cnilab_endpoints"]),
				"%s before the spec: %d veth-owner entries for %d endpoints (left behind by earlier pods)", n, baseline[n]["cnilab_lxc"], baseline[n]["cnilab_endpoints"])
		}
		w := newIsolatedServer(ctx, "reliability")

		window := time.Duration(agentRestarts)*1500*time.Millisecond + 10*time.Second
		flows := w.holdFlows(ctx, window)
		// The denied pair, probed every 100 ms (attempts overlap), must
		// never get through while the agents restart.
		denied := w.awaitDenied(ctx, window)
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
		during := fmt.Sprintf("across %d restarts of every agent", agentRestarts)
		expectHeld(flows, during)
		expectStillDenied(denied, during)

		By("deleting the pods: nothing of theirs is left in the agents' maps")
		Expect(DeleteNamespace(ctx, client, w.ns, 2*time.Minute)).To(Succeed())
		var last map[string]map[string]int
		Eventually(func() []string {
			now, off := stateLeftBy(ctx, socks, nodes, baseline, w)
			if now != nil {
				last = now
			}
			return off
		}).WithTimeout(90*time.Second).WithPolling(2*time.Second).Should(BeEmpty(), func() string {
			return fmt.Sprintf("state maps after the pods are gone (before %v, last %v)", baseline, last)
		})
		GinkgoWriter.Printf("maps before %v, after %v\n", baseline, last)
	}, SpecTimeout(5*time.Minute))
})

// stateLeftBy lists what the spec's pods (w) left in the agents' maps once
// they are gone: an endpoint or a tracked connection of theirs, a veth-owner
// entry without an endpoint, or a state map above its count before the
// spec. Other pods (earlier specs' still terminating, on real nodes CoreDNS)
// may come and go meanwhile, so counts may only fall. It returns the counts
// it saw.
func stateLeftBy(ctx context.Context, socks lab.AgentSocketer, nodes []string, baseline map[string]map[string]int, w isolatedServer) (map[string]map[string]int, []string) {
	now, err := agentMaps(ctx, socks, nodes)
	if err != nil {
		return nil, []string{err.Error()}
	}
	var off []string
	for _, n := range nodes {
		for m, before := range baseline[n] {
			if after := now[n][m]; m != "cnilab_ct" && after > before {
				off = append(off, fmt.Sprintf("%s %s: %d, above its %d before the spec", n, m, after, before))
			}
		}
		if now[n]["cnilab_lxc"] != now[n]["cnilab_endpoints"] {
			off = append(off, fmt.Sprintf("%s: %d veth-owner entries for %d endpoints", n, now[n]["cnilab_lxc"], now[n]["cnilab_endpoints"]))
		}
	}
	clients, err := agentClients(socks, nodes)
	if err != nil {
		return now, []string{err.Error()}
	}
	for _, n := range nodes {
		eps, err := clients[n].Endpoints(ctx)
		if err != nil {
			return now, []string{err.Error()}
		}
		for _, e := range eps {
			if slices.Contains(w.podIPs, e.IP) || e.PodNamespace == w.ns {
				off = append(off, fmt.Sprintf("%s still has the endpoint of %s/%s (%s)", n, e.PodNamespace, e.PodName, e.IP))
			}
		}
	}
	ct, err := conntrackOf(ctx, socks, nodes, w.podIPs)
	if err != nil {
		return now, []string{err.Error()}
	}
	for _, n := range nodes {
		for _, e := range ct[n] {
			off = append(off, fmt.Sprintf("%s conntrack still tracks %s", n, e))
		}
	}
	return now, off
}
