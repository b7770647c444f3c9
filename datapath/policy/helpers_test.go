package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The standard model: namespaces x, y, z labelled ns=<name>; pods a, b, c
// labelled pod=<name>, serving 80 and 81 on TCP, UDP and SCTP with ports
// named serve-80-tcp…; pod IP 10.244.<1|2|3>.<10|11|12>; pods a and c run
// on node-1 (10.0.0.1), b on node-2 (10.0.0.2).
var (
	stdNamespaces = []string{"x", "y", "z"}
	stdPods       = []string{"a", "b", "c"}
	node1, node2  = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	external      = netip.MustParseAddr("192.0.2.1")
)

func standardState() State {
	var s State
	for i, ns := range stdNamespaces {
		s.Namespaces = append(s.Namespaces, Namespace{Name: ns, Labels: map[string]string{"ns": ns, corev1.LabelMetadataName: ns}})
		for j, p := range stdPods {
			node := "node-1"
			if p == "b" {
				node = "node-2"
			}
			s.Pods = append(s.Pods, Pod{
				Namespace: ns, Name: p, Labels: map[string]string{"pod": p},
				IP:   netip.AddrFrom4([4]byte{10, 244, byte(i + 1), byte(j + 10)}),
				Node: node, Ports: standardPorts(),
			})
		}
	}
	s.Nodes = []Node{{Name: "node-1", IPs: []netip.Addr{node1}}, {Name: "node-2", IPs: []netip.Addr{node2}}}
	return s
}

func standardPorts() []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, port := range []int32{80, 81} {
		for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP} {
			out = append(out, corev1.ContainerPort{
				Name:          fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto))),
				ContainerPort: port, Protocol: proto,
			})
		}
	}
	return out
}

// ip returns the IP of pod "ns/name" in s.
func ip(s State, key string) netip.Addr {
	for _, p := range s.Pods {
		if p.Namespace+"/"+p.Name == key {
			return p.IP
		}
	}
	panic("no pod " + key)
}

// compileNodes compiles s for node-1 and node-2, each with its allocator.
func compileNodes(t testing.TB, s State) []Result {
	t.Helper()
	var out []Result
	for _, n := range []string{"node-1", "node-2"} {
		r, err := Compile(s, Local{NodeName: n}, NewAllocator())
		if err != nil {
			t.Fatalf("Compile(%s): %v", n, err)
		}
		out = append(out, r)
	}
	return out
}

// probe is a protocol and port; ICMP has port 0.
type probe struct {
	proto uint8
	port  uint16
}

var (
	tcp80, tcp81   = probe{ProtoTCP, 80}, probe{ProtoTCP, 81}
	udp80, udp81   = probe{ProtoUDP, 80}, probe{ProtoUDP, 81}
	sctp80, sctp81 = probe{ProtoSCTP, 80}, probe{ProtoSCTP, 81}
	icmp           = probe{ProtoICMP, 0}
	allProbes      = []probe{tcp80, tcp81, udp80, udp81, sctp80, sctp81, icmp}
)

func (p probe) String() string {
	name := map[uint8]string{ProtoTCP: "TCP", ProtoUDP: "UDP", ProtoSCTP: "SCTP", ProtoICMP: "ICMP"}[p.proto]
	if p.proto == ProtoICMP {
		return name
	}
	return fmt.Sprintf("%d/%s", p.port, name)
}

// flow is one probe between two pods of the standard model.
type flow struct {
	src, dst string // "ns/name"
	probe
}

func (f flow) srcNS() string { return f.src[:1] }
func (f flow) dstNS() string { return f.dst[:1] }

// checkMatrix compares Simulate with want on every pod pair and probe.
func checkMatrix(t *testing.T, s State, want func(flow) bool) {
	t.Helper()
	nodes := compileNodes(t, s)
	var bad []string
	for _, src := range s.Pods {
		for _, dst := range s.Pods {
			for _, p := range allProbes {
				f := flow{src.Namespace + "/" + src.Name, dst.Namespace + "/" + dst.Name, p}
				got := Simulate(nodes, src.IP, dst.IP, p.proto, p.port)
				if w := want(f); got != w {
					bad = append(bad, fmt.Sprintf("%s -> %s %v: got %v, want %v", f.src, f.dst, p, got, w))
				}
			}
		}
	}
	if len(bad) > 0 {
		if len(bad) > 20 {
			bad = append(bad[:20], fmt.Sprintf("… and %d more", len(bad)-20))
		}
		t.Errorf("%d mismatches:\n%s", len(bad), strings.Join(bad, "\n"))
	}
}

// Policy builders.

type mod func(*networkingv1.NetworkPolicySpec)

func netpol(ns, name string, sel *metav1.LabelSelector, mods ...mod) networkingv1.NetworkPolicy {
	np := networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	np.Spec.PodSelector = *sel
	for _, m := range mods {
		m(&np.Spec)
	}
	return np
}

func all() *metav1.LabelSelector { return &metav1.LabelSelector{} }

func match(kv ...string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	for i := 0; i < len(kv); i += 2 {
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

func expr(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

type ruleT struct {
	peers []networkingv1.NetworkPolicyPeer
	ports []networkingv1.NetworkPolicyPort
}

func peers(ps ...networkingv1.NetworkPolicyPeer) ruleT { return ruleT{peers: ps} }

func (r ruleT) on(ports ...networkingv1.NetworkPolicyPort) ruleT { r.ports = ports; return r }

func ingress(rs ...ruleT) mod {
	return func(s *networkingv1.NetworkPolicySpec) {
		for _, r := range rs {
			s.Ingress = append(s.Ingress, networkingv1.NetworkPolicyIngressRule{From: r.peers, Ports: r.ports})
		}
	}
}

func egress(rs ...ruleT) mod {
	return func(s *networkingv1.NetworkPolicySpec) {
		for _, r := range rs {
			s.Egress = append(s.Egress, networkingv1.NetworkPolicyEgressRule{To: r.peers, Ports: r.ports})
		}
	}
}

func types(ts ...networkingv1.PolicyType) mod {
	return func(s *networkingv1.NetworkPolicySpec) { s.PolicyTypes = ts }
}

const (
	typeIn = networkingv1.PolicyTypeIngress
	typeEg = networkingv1.PolicyTypeEgress
)

func podSel(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: s}
}

func nsSel(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: s}
}

func nsPodSel(ns, pod *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: ns, PodSelector: pod}
}

func cidr(c string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: c, Except: except}}
}

func numPort(proto corev1.Protocol, n int32) networkingv1.NetworkPolicyPort {
	p := intstr.FromInt32(n)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
}

func named(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	p := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
}

func portRange(proto corev1.Protocol, from, to int32) networkingv1.NetworkPolicyPort {
	p := numPort(proto, from)
	p.EndPort = &to
	return p
}

const (
	TCP  = corev1.ProtocolTCP
	UDP  = corev1.ProtocolUDP
	SCTP = corev1.ProtocolSCTP
)
