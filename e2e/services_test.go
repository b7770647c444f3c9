package e2e

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cnilab/cnilab/datapath/flows"
	"github.com/cnilab/cnilab/lab/probe"
)

// servicePort and nodePort are the Services' ports; the backends serve
// backendPort (TCP and UDP), so every probe goes through a translation.
const (
	servicePort = 8080
	nodePort    = 30080
	backendPort = 80
)

// Services beside kube-proxy (iptables mode): ClusterIP with the backend on
// the client's node, on the other node and the client itself (hairpin),
// NodePort on either node, the node's own connections to a ClusterIP, and
// NetworkPolicy on the translated connection. On cnilab each probe also
// shows in the flows: the client's packet to the ClusterIP handed to the
// stack, and the translated connection to the backend.
var _ = Describe("Services", Label("services"), Ordered, func() {
	var (
		ns    string
		pods  map[string]*corev1.Pod
		nodes []string
		vip   map[string]string // Service name → ClusterIP
	)

	BeforeAll(func(ctx SpecContext) {
		for _, n := range cluster.Nodes() {
			nodes = append(nodes, n.Name)
		}
		Expect(len(nodes)).To(BeNumerically(">=", 2), "Service specs need two nodes")
		ns = fmt.Sprintf("services-%d", time.Now().UnixNano()%100000)
		Expect(CreateNamespace(ctx, client, ns, map[string]string{"cnilab.io/e2e": "services"})).To(Succeed())
		specs := []PodSpec{
			{Name: "client-a", Node: nodes[0], Labels: map[string]string{"role": "client-a"}, Ports: Ports(backendPort)},
			{Name: "client-b", Node: nodes[1], Labels: map[string]string{"role": "client-b"}, Ports: Ports(backendPort)},
			{Name: "backend-a", Node: nodes[0], Labels: map[string]string{"role": "backend-a"}, Ports: Ports(backendPort)},
			{Name: "backend-b", Node: nodes[1], Labels: map[string]string{"role": "backend-b"}, Ports: Ports(backendPort)},
		}
		var names []string
		for _, s := range specs {
			_, err := client.CoreV1().Pods(ns).Create(ctx, ProbePod(ns, s), createOpts)
			Expect(err).NotTo(HaveOccurred())
			names = append(names, s.Name)
		}
		vip = map[string]string{}
		for _, svc := range []*corev1.Service{
			serviceFor("svc-a", "backend-a", corev1.ServiceTypeClusterIP),
			serviceFor("svc-b", "backend-b", corev1.ServiceTypeClusterIP),
			serviceFor("svc-np", "backend-a", corev1.ServiceTypeNodePort),
		} {
			got, err := client.CoreV1().Services(ns).Create(ctx, svc, createOpts)
			Expect(err).NotTo(HaveOccurred())
			vip[svc.Name] = got.Spec.ClusterIP
		}
		var err error
		pods, err = WaitRunning(ctx, client, ns, names, 2*time.Minute)
		Expect(err).NotTo(HaveOccurred())
		// kube-proxy writes its rules once the EndpointSlices list the
		// ready backends: wait for the first answer through each Service.
		for _, name := range []string{"svc-a", "svc-b"} {
			Eventually(func() bool {
				r, err := Probe(ctx, cluster, From{Namespace: ns, Pod: "client-a"}, probe.TCP, addrPort(vip[name], servicePort), 2*time.Second)
				return err == nil && r.Success
			}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(BeTrue(), "%s (%s) answers", name, vip[name])
		}
	}, NodeTimeout(4*time.Minute))

	AfterAll(func(ctx SpecContext) {
		if ns != "" {
			Expect(DeleteNamespace(ctx, client, ns, 2*time.Minute)).To(Succeed())
		}
	}, NodeTimeout(3*time.Minute))

	expectAnswer := func(ctx context.Context, f From, proto probe.Protocol, target, backend string) {
		r := probeUntil(ctx, f, proto, target)
		Expect(r.Success).To(BeTrue(), "%s %s → %s: %s", proto, f, target, r.Error)
		Expect(r.Reply).To(Equal(backend), "%s %s → %s answered by the wrong backend", proto, f, target)
	}
	nodeIP := func(i int) string { return cluster.Nodes()[i].IP }
	// expectServiceFlows checks, on cnilab, that the client's node shows the
	// packet to the ClusterIP handed to the stack and the translated
	// connection leaving the client for the backend, and the backend's node
	// the connection arriving at the backend.
	expectServiceFlows := func(ctx context.Context, clientNode int, clientPod, clusterIP string, backendNode int, backendPod string) {
		socks, why := cnilabAgents()
		if socks == nil {
			By("flows: " + why)
			return
		}
		c, b := pods[clientPod], pods[backendPod]
		expectAgentFlow(ctx, socks, nodes[clientNode], ns, clientPod+" → ClusterIP "+clusterIP+" to the stack", func(f flows.Flow) bool {
			return f.Verdict == "FORWARDED" && f.TrafficDirection == "EGRESS" && f.TraceObservationPoint == "TO_STACK" &&
				f.IP.Source == c.Status.PodIP && f.IP.Destination == clusterIP && f.Source.PodName == clientPod
		})
		expectAgentFlow(ctx, socks, nodes[clientNode], ns, clientPod+" → "+backendPod+" (translated) at the client's egress", func(f flows.Flow) bool {
			return f.Verdict == "FORWARDED" && f.TrafficDirection == "EGRESS" && !f.IsReply &&
				f.IP.Source == c.Status.PodIP && f.IP.Destination == b.Status.PodIP && f.Destination.PodName == backendPod
		})
		expectAgentFlow(ctx, socks, nodes[backendNode], ns, clientPod+" → "+backendPod+" at the backend's ingress", func(f flows.Flow) bool {
			return f.Verdict == "FORWARDED" && f.TrafficDirection == "INGRESS" && !f.IsReply &&
				f.IP.Source == c.Status.PodIP && f.IP.Destination == b.Status.PodIP && f.Source.PodName == clientPod
		})
	}

	for _, proto := range []probe.Protocol{probe.TCP, probe.UDP} {
		It(fmt.Sprintf("pod to pod across nodes over %s", proto), func(ctx SpecContext) {
			expectAnswer(ctx, From{Namespace: ns, Pod: "client-a"}, proto, addrPort(pods["backend-b"].Status.PodIP, backendPort), "backend-b")
			expectAnswer(ctx, From{Namespace: ns, Pod: "client-b"}, proto, addrPort(pods["backend-a"].Status.PodIP, backendPort), "backend-a")
		}, SpecTimeout(40*time.Second))

		It(fmt.Sprintf("pod to ClusterIP, backend on the same node, over %s", proto), func(ctx SpecContext) {
			expectAnswer(ctx, From{Namespace: ns, Pod: "client-a"}, proto, addrPort(vip["svc-a"], servicePort), "backend-a")
			expectServiceFlows(ctx, 0, "client-a", vip["svc-a"], 0, "backend-a")
		}, SpecTimeout(40*time.Second))

		It(fmt.Sprintf("pod to ClusterIP, backend on the other node, over %s", proto), func(ctx SpecContext) {
			expectAnswer(ctx, From{Namespace: ns, Pod: "client-a"}, proto, addrPort(vip["svc-b"], servicePort), "backend-b")
			expectServiceFlows(ctx, 0, "client-a", vip["svc-b"], 1, "backend-b")
			expectAnswer(ctx, From{Namespace: ns, Pod: "client-b"}, proto, addrPort(vip["svc-a"], servicePort), "backend-a")
			expectServiceFlows(ctx, 1, "client-b", vip["svc-a"], 0, "backend-a")
		}, SpecTimeout(60*time.Second))

		It(fmt.Sprintf("pod to ClusterIP with itself as the backend (hairpin) over %s", proto), func(ctx SpecContext) {
			expectAnswer(ctx, From{Namespace: ns, Pod: "backend-a"}, proto, addrPort(vip["svc-a"], servicePort), "backend-a")
		}, SpecTimeout(40*time.Second))

		It(fmt.Sprintf("pod to NodePort on its own node and on the other node over %s", proto), func(ctx SpecContext) {
			if proto == probe.UDP {
				Skip("the NodePort Service is TCP only")
			}
			expectAnswer(ctx, From{Namespace: ns, Pod: "client-b"}, proto, addrPort(nodeIP(1), nodePort), "backend-a")
			expectAnswer(ctx, From{Namespace: ns, Pod: "client-b"}, proto, addrPort(nodeIP(0), nodePort), "backend-a")
			expectAnswer(ctx, From{Namespace: ns, Pod: "client-a"}, proto, addrPort(nodeIP(1), nodePort), "backend-a")
		}, SpecTimeout(40*time.Second))

		It(fmt.Sprintf("node to ClusterIP, backend on the same and the other node, over %s", proto), func(ctx SpecContext) {
			expectAnswer(ctx, From{Node: nodes[0]}, proto, addrPort(vip["svc-a"], servicePort), "backend-a")
			expectAnswer(ctx, From{Node: nodes[0]}, proto, addrPort(vip["svc-b"], servicePort), "backend-b")
		}, SpecTimeout(40*time.Second))
	}

	Context("with NetworkPolicy on the translated connection", func() {
		BeforeEach(func() {
			if ok, why := runsCnilab(); !ok {
				Skip("NetworkPolicy " + why)
			}
		})
		// expectNoAnswer waits until target no longer answers f.
		expectNoAnswer := func(ctx context.Context, f From, target string) {
			Eventually(func() bool {
				r, err := Probe(ctx, cluster, f, probe.TCP, target, 2*time.Second)
				return err == nil && !r.Success
			}).WithContext(ctx).WithTimeout(15*time.Second).Should(BeTrue(), "%s → %s is denied", f, target)
		}

		// applyPolicy creates np for the spec, deleted after it.
		applyPolicy := func(ctx context.Context, np *networkingv1.NetworkPolicy) {
			_, err := client.NetworkingV1().NetworkPolicies(np.Namespace).Create(ctx, np, createOpts)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func(ctx SpecContext) {
				_ = client.NetworkingV1().NetworkPolicies(np.Namespace).Delete(ctx, np.Name, metav1.DeleteOptions{})
			})
		}

		It("applies the client's egress rules to the backend behind the ClusterIP", func(ctx SpecContext) {
			// spec.egress[].to[].podSelector: only backend-b, on port 80.
			np := policy(ns, "client-a-egress", "client-a", networkingv1.PolicyTypeEgress, "backend-b")
			applyPolicy(ctx, np)
			from := From{Namespace: ns, Pod: "client-a"}
			expectNoAnswer(ctx, from, addrPort(vip["svc-a"], servicePort))
			expectAnswer(ctx, from, probe.TCP, addrPort(vip["svc-b"], servicePort), "backend-b")
		}, SpecTimeout(60*time.Second))

		It("applies the backend's ingress rules to the client, not the ClusterIP", func(ctx SpecContext) {
			// spec.ingress[].from[].podSelector: only client-b, on port 80.
			np := policy(ns, "backend-a-ingress", "backend-a", networkingv1.PolicyTypeIngress, "client-b")
			applyPolicy(ctx, np)
			expectNoAnswer(ctx, From{Namespace: ns, Pod: "client-a"}, addrPort(vip["svc-a"], servicePort))
			expectAnswer(ctx, From{Namespace: ns, Pod: "client-b"}, probe.TCP, addrPort(vip["svc-a"], servicePort), "backend-a")
		}, SpecTimeout(60*time.Second))
	})
})

func addrPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// serviceFor is a Service of type typ in front of the pod with role
// backend: servicePort → backendPort over TCP and UDP (NodePort: TCP on
// nodePort).
func serviceFor(name, backend string, typ corev1.ServiceType) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: map[string]string{"role": backend},
			Ports: []corev1.ServicePort{
				{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: servicePort, TargetPort: intstr.FromInt32(backendPort)},
				{Name: "udp", Protocol: corev1.ProtocolUDP, Port: servicePort, TargetPort: intstr.FromInt32(backendPort)},
			},
		},
	}
	if typ == corev1.ServiceTypeNodePort {
		svc.Spec.Ports = []corev1.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: servicePort,
			TargetPort: intstr.FromInt32(backendPort), NodePort: nodePort}}
	}
	return svc
}

// policy selects the pod with role subject and allows, in direction
// typ, only the pod with role peer on TCP backendPort.
func policy(ns, name, subject string, typ networkingv1.PolicyType, peer string) *networkingv1.NetworkPolicy {
	tcp := corev1.ProtocolTCP
	port := intstr.FromInt32(backendPort)
	peers := []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": peer}}}}
	ports := []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": subject}},
			PolicyTypes: []networkingv1.PolicyType{typ},
		},
	}
	if typ == networkingv1.PolicyTypeEgress {
		np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{To: peers, Ports: ports}}
	} else {
		np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: peers, Ports: ports}}
	}
	return np
}
