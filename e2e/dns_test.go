package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cnilab/cnilab/lab/probe"
	"github.com/cnilab/cnilab/manifests"
)

// Cluster DNS as pods use it: CoreDNS behind the kube-dns Service, reached
// through the resolv.conf the kubelet writes (the cluster DNS address, the
// search domains of the pod's namespace, ndots:5). A Service resolves by its
// full name and its short name, kubernetes.default by the search list, and a
// name that does not exist gets an answer saying so (not a timeout). On
// cnilab, a policy that allows a pod egress only to kube-dns on port 53 keeps
// its DNS working and denies everything else.
var _ = Describe("DNS", Label("dns", "services"), Ordered, func() {
	var (
		ns, vip, apiVIP string
		domain          = manifests.DefaultClusterDomain
	)
	client0 := func() From { return From{Namespace: ns, Pod: "client"} }

	BeforeAll(func(ctx SpecContext) {
		_, err := client.CoreV1().Services(metav1.NamespaceSystem).Get(ctx, "kube-dns", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			Skip("the cluster has no kube-dns Service: light nodes run no CoreDNS and write no resolv.conf (real nodes do)")
		}
		Expect(err).NotTo(HaveOccurred())
		api, err := client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		apiVIP = api.Spec.ClusterIP
		var nodes []string
		for _, n := range cluster.Nodes() {
			nodes = append(nodes, n.Name)
		}
		ns = fmt.Sprintf("dns-%d", time.Now().UnixNano()%100000)
		Expect(CreateNamespace(ctx, client, ns, map[string]string{"cnilab.io/e2e": "dns"})).To(Succeed())
		for _, s := range []PodSpec{
			{Name: "client", Node: nodes[0], Labels: map[string]string{"role": "client"}, Ports: Ports(backendPort)},
			{Name: "backend", Node: nodes[len(nodes)-1], Labels: map[string]string{"role": "backend"}, Ports: Ports(backendPort)},
		} {
			_, err := client.CoreV1().Pods(ns).Create(ctx, ProbePod(ns, s), createOpts)
			Expect(err).NotTo(HaveOccurred())
		}
		svc, err := client.CoreV1().Services(ns).Create(ctx, serviceFor("web", "backend", corev1.ServiceTypeClusterIP), createOpts)
		Expect(err).NotTo(HaveOccurred())
		vip = svc.Spec.ClusterIP
		_, err = WaitRunning(ctx, client, ns, []string{"client", "backend"}, 2*time.Minute)
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(3*time.Minute))

	AfterAll(func(ctx SpecContext) {
		if ns != "" {
			Expect(DeleteNamespace(ctx, client, ns, 2*time.Minute)).To(Succeed())
		}
	}, NodeTimeout(3*time.Minute))

	It("resolves Services by full and short name, kubernetes.default by the search list, and answers NXDOMAIN for a missing name", func(ctx SpecContext) {
		for name, want := range map[string]string{
			"web." + ns + ".svc." + domain + ".": vip,
			"web":                                vip,
			"kubernetes.default":                 apiVIP,
		} {
			Eventually(func() probe.ResolveResult { return resolveFrom(ctx, client0(), name) }).
				WithContext(ctx).WithTimeout(time.Minute).WithPolling(2*time.Second).
				Should(HaveField("Addresses", ConsistOf(want)), "%s from %s", name, client0())
		}
		missing := "no-such-service." + ns + ".svc." + domain + "."
		r := resolveFrom(ctx, client0(), missing)
		Expect(r.Success).To(BeFalse(), "%s resolved to %v", missing, r.Addresses)
		Expect(r.NotFound).To(BeTrue(), "%s: want a not-found answer, got %q (timeout %v)", missing, r.Error, r.Timeout)
	}, SpecTimeout(2*time.Minute))

	It("keeps working under a policy that allows egress only to kube-dns on port 53, which denies the rest", func(ctx SpecContext) {
		if ok, why := runsCnilab(); !ok {
			Skip("NetworkPolicy is enforced by cnilab only: " + why)
		}
		Expect(probeUntil(ctx, client0(), probe.TCP, addrPort(vip, servicePort)).Success).To(BeTrue(), "the Service answers before the policy")
		np := dnsOnlyEgress(ns)
		_, err := client.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, createOpts)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			// AfterAll may have removed the namespace, and the policy with it.
			err := client.NetworkingV1().NetworkPolicies(ns).Delete(ctx, np.Name, metav1.DeleteOptions{})
			Expect(err == nil || apierrors.IsNotFound(err)).To(BeTrue(), "delete the DNS-only policy: %v", err)
		})
		Eventually(func() bool {
			r, err := Probe(ctx, cluster, client0(), probe.TCP, addrPort(vip, servicePort), time.Second)
			return err == nil && !r.Success
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(BeTrue(), "the policy denies client → Service web")
		for _, name := range []string{"web", "kubernetes.default"} {
			r := resolveFrom(ctx, client0(), name)
			Expect(r.Success).To(BeTrue(), "%s under the DNS-only policy: %s", name, r.Error)
		}
		Expect(resolveFrom(ctx, client0(), "web").Addresses).To(ConsistOf(vip))
		r, err := Probe(ctx, cluster, client0(), probe.TCP, addrPort(apiVIP, 443), 2*time.Second)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Success).To(BeFalse(), "client → kubernetes Service under the DNS-only policy")
	}, SpecTimeout(3*time.Minute))
})

// resolveFrom looks name up from a pod through its resolv.conf.
func resolveFrom(ctx context.Context, f From, name string) probe.ResolveResult {
	GinkgoHelper()
	res, err := cluster.ExecPod(ctx, f.Namespace, f.Pod, []string{"cnilab-probe", "resolve", "--timeout", "5s", name})
	Expect(err).NotTo(HaveOccurred())
	Expect(res.ExitCode).To(BeNumerically("<=", 1), "cnilab-probe resolve %s from %s: %s", name, f, res.Stderr)
	var r probe.ResolveResult
	Expect(json.Unmarshal(res.Stdout, &r)).To(Succeed(), "cnilab-probe resolve output %q", res.Stdout)
	return r
}

// dnsOnlyEgress allows the pod with role client egress only to the
// kube-dns pods (spec.egress[0].to: namespaceSelector kube-system and
// podSelector k8s-app=kube-dns) on UDP and TCP 53 (spec.egress[0].ports).
func dnsOnlyEgress(ns string) *networkingv1.NetworkPolicy {
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	port := intstr.FromInt32(53)
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "dns-only", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": metav1.NamespaceSystem}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
				}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &port}, {Protocol: &tcp, Port: &port}},
			}},
		},
	}
}
