package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnilab/cnilab/datapath/api"
	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/probe"
)

// isolatedServer is the workload of the reliability specs: a server on the
// second node that a policy opens to role=allowed only, an allowed client
// and a denied one on the first node.
type isolatedServer struct {
	ns     string
	nodes  []string
	target string // server's pod IP, port 80
	podIPs []string
}

// newIsolatedServer creates the namespace (removed after the spec), the
// three pods and the policy, and waits until the policy denies the denied
// pod and the allowed one still gets through.
func newIsolatedServer(ctx context.Context, prefix string) isolatedServer {
	var w isolatedServer
	for _, n := range cluster.Nodes() {
		w.nodes = append(w.nodes, n.Name)
	}
	Expect(len(w.nodes)).To(BeNumerically(">=", 2), "the spec needs two nodes")
	w.ns = fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%100000)
	Expect(CreateNamespace(ctx, client, w.ns, map[string]string{"cnilab.io/e2e": prefix})).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		Expect(DeleteNamespace(ctx, client, w.ns, 2*time.Minute)).To(Succeed())
	})
	for _, s := range []PodSpec{
		{Name: "server", Node: w.nodes[1], Labels: map[string]string{"app": "server"}, Ports: Ports(80)},
		{Name: "client", Node: w.nodes[0], Labels: map[string]string{"role": "allowed"}, Ports: Ports(80)},
		{Name: "denied", Node: w.nodes[0], Labels: map[string]string{"role": "denied"}, Ports: Ports(80)},
	} {
		_, err := client.CoreV1().Pods(w.ns).Create(ctx, ProbePod(w.ns, s), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
	}
	pods, err := WaitRunning(ctx, client, w.ns, []string{"server", "client", "denied"}, 2*time.Minute)
	Expect(err).NotTo(HaveOccurred())
	// spec.ingress[0].from[0].podSelector: only role=allowed reaches the
	// server; role=denied is denied.
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-client-only", Namespace: w.ns},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "server"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
				{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "allowed"}}},
			}}},
		},
	}
	_, err = client.NetworkingV1().NetworkPolicies(w.ns).Create(ctx, np, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	w.target = net.JoinHostPort(pods["server"].Status.PodIP, "80")
	for _, p := range pods {
		w.podIPs = append(w.podIPs, p.Status.PodIP)
	}
	Eventually(func() bool {
		r, err := Probe(ctx, cluster, From{Namespace: w.ns, Pod: "denied"}, probe.TCP, w.target, time.Second)
		return err == nil && !r.Success
	}).WithTimeout(time.Minute).WithPolling(500*time.Millisecond).Should(BeTrue(), "the policy denies denied → server")
	w.expectReach(ctx, "client", true)
	return w
}

// expectReach probes the server from pod once, on a new connection.
func (w isolatedServer) expectReach(ctx context.Context, pod string, want bool) {
	GinkgoHelper()
	r, err := Probe(ctx, cluster, From{Namespace: w.ns, Pod: pod}, probe.TCP, w.target, 2*time.Second)
	Expect(err).NotTo(HaveOccurred())
	Expect(r.Success).To(Equal(want), "%s → server on a new connection: success %v, want %v (%s)", pod, r.Success, want, r.Error)
}

// heldFlow is one long-lived flow from the allowed client to the server.
type heldFlow struct {
	name string
	res  probe.HoldResult
	err  error
}

// holdFlows starts a TCP connection and a UDP flow from the allowed client
// to the server, one line or datagram every 100 ms for window; the channel
// yields both results.
func (w isolatedServer) holdFlows(ctx context.Context, window time.Duration) <-chan heldFlow {
	runs := []struct {
		name string
		argv []string
	}{
		{"TCP connection", []string{"cnilab-probe", "hold", "--protocol", "tcp", "--duration", window.String(), "--interval", "100ms", "--timeout", "5s", w.target}},
		{"UDP flow", []string{"cnilab-probe", "hold", "--protocol", "udp", "--duration", window.String(), "--interval", "100ms", "--timeout", "1s", w.target}},
	}
	out := make(chan heldFlow, len(runs))
	for _, h := range runs {
		go func() {
			defer GinkgoRecover()
			r, err := cluster.ExecPod(ctx, w.ns, "client", h.argv)
			o := heldFlow{name: h.name, err: err}
			if err == nil {
				if jerr := json.Unmarshal(r.Stdout, &o.res); jerr != nil {
					o.err = fmt.Errorf("%s: exit %d: %s%s", h.name, r.ExitCode, r.Stdout, r.Stderr)
				}
			}
			out <- o
		}()
	}
	return out
}

// expectHeld waits for both held flows and requires that neither broke.
func expectHeld(flows <-chan heldFlow, during string) {
	GinkgoHelper()
	for range 2 {
		o := <-flows
		Expect(o.err).NotTo(HaveOccurred())
		AddReportEntry(fmt.Sprintf("longest gap on the %s %s (ms)", o.name, during), o.res.MaxGapMS)
		GinkgoWriter.Printf("%s %s: sent %d, answered %d, longest gap %.0f ms\n", o.name, during, o.res.Sent, o.res.Echoed, o.res.MaxGapMS)
		Expect(o.res.Success).To(BeTrue(), "%s %s: %s", o.name, during, o.res.Error)
	}
}

// awaitDenied probes the server from the denied pod with overlapping
// attempts every 100 ms for window; the channel yields whether any got
// through.
func (w isolatedServer) awaitDenied(ctx context.Context, window time.Duration) <-chan probe.AwaitResult {
	out := make(chan probe.AwaitResult, 1)
	go func() {
		defer GinkgoRecover()
		r, err := cluster.ExecPod(ctx, w.ns, "denied", []string{"cnilab-probe", "await", "--state", "reachable", "--interval", "100ms", "--timeout", "500ms", "--within", window.String(), w.target})
		Expect(err).NotTo(HaveOccurred())
		var res probe.AwaitResult
		Expect(json.Unmarshal(r.Stdout, &res)).To(Succeed(), "await output %s %s", r.Stdout, r.Stderr)
		out <- res
	}()
	return out
}

// expectStillDenied requires that no attempt of awaitDenied got through.
func expectStillDenied(denied <-chan probe.AwaitResult, during string) {
	GinkgoHelper()
	d := <-denied
	Expect(d.Reached).To(BeFalse(), "denied → server got through at %s %s (attempt %d)", d.At, during, d.Attempts)
	GinkgoWriter.Printf("denied pair %s: %d attempts, none through\n", during, d.Attempts)
}

// agentMaps returns the entry count of every state map of every node's
// agent.
// conntrackOf lists, per node, the tracked connections from or to any of
// ips ("tcp 10.244.1.5:43210 → 10.244.2.7:80").
func conntrackOf(ctx context.Context, socks lab.AgentSocketer, nodes, ips []string) (map[string][]string, error) {
	clients, err := agentClients(socks, nodes)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, n := range nodes {
		entries, err := clients[n].Conntrack(ctx)
		if err != nil {
			return nil, fmt.Errorf("conntrack of %s: %w", n, err)
		}
		for _, e := range entries {
			src, _ := netip.ParseAddrPort(e.Src)
			dst, _ := netip.ParseAddrPort(e.Dst)
			if slices.Contains(ips, src.Addr().String()) || slices.Contains(ips, dst.Addr().String()) {
				out[n] = append(out[n], fmt.Sprintf("%s %s → %s", e.Proto, e.Src, e.Dst))
			}
		}
	}
	return out, nil
}

func agentMaps(ctx context.Context, socks lab.AgentSocketer, nodes []string) (map[string]map[string]int, error) {
	clients, err := agentClients(socks, nodes)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]int{}
	for _, n := range nodes {
		m, err := clients[n].MapEntries(ctx)
		if err != nil {
			return nil, fmt.Errorf("maps of %s: %w", n, err)
		}
		out[n] = m
	}
	return out, nil
}

// agentClients are the API clients of the nodes' agents, by node.
func agentClients(socks lab.AgentSocketer, nodes []string) (map[string]*api.Client, error) {
	out := map[string]*api.Client{}
	for _, n := range nodes {
		sock, err := socks.AgentSocket(n)
		if err != nil {
			return nil, err
		}
		out[n] = api.NewClient(sock)
	}
	return out, nil
}
