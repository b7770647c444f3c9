package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/probe"
)

// hostPort is where hostNetwork probe pods listen on their node.
const hostPort = 31080

// probeTimeout bounds one connection attempt; a probe may take attempts.
const (
	probeTimeout  = 3 * time.Second
	probeAttempts = 3
)

var _ = Describe("Connectivity", Label("connectivity"), Ordered, func() {
	var (
		ns    string
		pods  map[string]*corev1.Pod
		nodes []string
	)

	BeforeAll(func(ctx SpecContext) {
		for _, n := range cluster.Nodes() {
			nodes = append(nodes, n.Name)
		}
		Expect(len(nodes)).To(BeNumerically(">=", 2), "connectivity specs need two nodes")
		ns = fmt.Sprintf("connectivity-%d", time.Now().UnixNano()%100000)
		Expect(CreateNamespace(ctx, client, ns, map[string]string{"cnilab.io/e2e": "connectivity"})).To(Succeed())
		specs := []PodSpec{
			{Name: "client", Node: nodes[0], Labels: map[string]string{"role": "client"}, Ports: Ports(80)},
			{Name: "server-local", Node: nodes[0], Labels: map[string]string{"role": "server"}, Ports: Ports(80)},
			{Name: "server-remote", Node: nodes[1], Labels: map[string]string{"role": "server"}, Ports: Ports(80)},
			{Name: "host-local", Node: nodes[0], HostNetwork: true, Ports: Ports(hostPort)},
			{Name: "host-remote", Node: nodes[1], HostNetwork: true, Ports: Ports(hostPort)},
		}
		var names []string
		for _, s := range specs {
			_, err := client.CoreV1().Pods(ns).Create(ctx, ProbePod(ns, s), createOpts)
			Expect(err).NotTo(HaveOccurred())
			names = append(names, s.Name)
		}
		var err error
		pods, err = WaitRunning(ctx, client, ns, names, 2*time.Minute)
		Expect(err).NotTo(HaveOccurred())
		Expect(pods["client"].Spec.NodeName).To(Equal(nodes[0]), "the scheduler honours the node selector")
		Expect(pods["server-remote"].Spec.NodeName).To(Equal(nodes[1]))
	}, NodeTimeout(3*time.Minute))

	AfterAll(func(ctx SpecContext) {
		if ns != "" {
			Expect(DeleteNamespace(ctx, client, ns, 2*time.Minute)).To(Succeed())
		}
	}, NodeTimeout(3*time.Minute))

	// expectReach probes until it succeeds (at most probeAttempts times) and
	// checks the answer came from the intended peer.
	expectReach := func(ctx context.Context, from From, proto probe.Protocol, to *corev1.Pod, port int) {
		target := to.Status.PodIP
		if proto != probe.ICMP {
			target = net.JoinHostPort(target, strconv.Itoa(port))
		}
		want := to.Name
		switch {
		case proto == probe.ICMP:
			want = to.Status.PodIP
		case to.Spec.HostNetwork:
			want = to.Spec.NodeName
		}
		last := probeUntil(ctx, from, proto, target)
		Expect(last.Success).To(BeTrue(), "%s %s → %s: %s", proto, from, target, last.Error)
		Expect(last.Reply).To(Equal(want), "%s %s → %s answered by the wrong peer", proto, from, target)
	}

	protocols := []probe.Protocol{probe.TCP, probe.UDP, probe.ICMP}
	type path struct {
		name string
		from func() From
		to   func() *corev1.Pod
		port int
	}
	paths := []path{
		{"pod to pod on the same node", func() From { return From{Namespace: ns, Pod: "client"} }, func() *corev1.Pod { return pods["server-local"] }, 80},
		{"pod to pod across nodes", func() From { return From{Namespace: ns, Pod: "client"} }, func() *corev1.Pod { return pods["server-remote"] }, 80},
		{"node to pod on the same node", func() From { return From{Node: nodes[0]} }, func() *corev1.Pod { return pods["server-local"] }, 80},
		{"node to pod on another node", func() From { return From{Node: nodes[0]} }, func() *corev1.Pod { return pods["server-remote"] }, 80},
		{"pod to its own node", func() From { return From{Namespace: ns, Pod: "client"} }, func() *corev1.Pod { return pods["host-local"] }, hostPort},
		{"pod to another node", func() From { return From{Namespace: ns, Pod: "client"} }, func() *corev1.Pod { return pods["host-remote"] }, hostPort},
	}
	It("keeps the lab off the machine's network", Label("isolation"), func() {
		checker, ok := cluster.(lab.IsolationChecker)
		if !ok {
			Skip("provider " + cluster.Provider() + " cannot inspect its nodes' routes")
		}
		Expect(checker.CheckIsolation()).To(Succeed())
	})

	for _, p := range paths {
		for _, proto := range protocols {
			It(fmt.Sprintf("%s over %s", p.name, proto), func(ctx SpecContext) {
				expectReach(ctx, p.from(), proto, p.to(), p.port)
			}, SpecTimeout(30*time.Second))
		}
	}

	It("keeps an established TCP connection while the CNI's node agents restart", Label("restart"), func(ctx SpecContext) {
		restarter, ok := cluster.(lab.AgentRestarter)
		if !ok {
			Skip("provider " + cluster.Provider() + " cannot restart node agents")
		}
		target := net.JoinHostPort(pods["server-remote"].Status.PodIP, "80")
		type outcome struct {
			res probe.HoldResult
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			defer GinkgoRecover()
			r, err := cluster.ExecPod(ctx, ns, "client", []string{"cnilab-probe", "hold", "--duration", "15s", "--interval", "100ms", "--timeout", "5s", target})
			var o outcome
			o.err = err
			if err == nil {
				o.err = json.Unmarshal(r.Stdout, &o.res)
			}
			done <- o
		}()
		time.Sleep(time.Second)
		for i := 0; i < 4; i++ {
			sig := syscall.SIGTERM
			if i%2 == 1 {
				sig = syscall.SIGKILL
			}
			for _, n := range nodes {
				Expect(restarter.RestartNodeAgent(n, sig)).To(Succeed())
			}
			time.Sleep(1500 * time.Millisecond)
		}
		o := <-done
		Expect(o.err).NotTo(HaveOccurred())
		AddReportEntry("longest gap on the held connection (ms)", o.res.MaxGapMS)
		Expect(o.res.Success).To(BeTrue(), "held TCP connection %s across 8 agent restarts: %s", target, o.res.Error)
		// And the restarted agents still serve new connections.
		expectReach(ctx, From{Namespace: ns, Pod: "client"}, probe.TCP, pods["server-remote"], 80)
	}, SpecTimeout(90*time.Second))
})
