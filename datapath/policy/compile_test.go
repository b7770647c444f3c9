package policy

import (
	"net/netip"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"slices"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSemantics checks every rule of NetworkPolicy on the standard model:
// each case's want is the hand-written reachability (all pod pairs, all
// probes, ICMP included) of its policies.
func TestSemantics(t *testing.T) {
	xa := match("pod", "a")
	tests := []struct {
		name     string
		policies []networkingv1.NetworkPolicy
		want     func(flow) bool
	}{
		{"no policy allows everything", nil, func(flow) bool { return true }},
		{"empty podSelector, no rules: deny all ingress in x",
			[]networkingv1.NetworkPolicy{netpol("x", "deny", all())},
			func(f flow) bool { return f.dstNS() != "x" }},
		{"policy in y does not touch x",
			[]networkingv1.NetworkPolicy{netpol("y", "deny", all())},
			func(f flow) bool { return f.dstNS() != "y" }},

		// spec.policyTypes defaulting.
		{"egress rules default policyTypes to Ingress+Egress",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, egress(peers(nsSel(match("ns", "y")))))},
			func(f flow) bool { return f.dst != "x/a" && (f.src != "x/a" || f.dstNS() == "y") }},
		{"policyTypes [Egress] with no rules denies egress only",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, types(typeEg))},
			func(f flow) bool { return f.src != "x/a" }},
		{"policyTypes [Ingress] ignores egress rules",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, types(typeIn), egress(peers(nsSel(match("ns", "y")))))},
			func(f flow) bool { return f.dst != "x/a" }},
		{"policyTypes both with no rules isolates both",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, types(typeIn, typeEg))},
			func(f flow) bool { return f.dst != "x/a" && f.src != "x/a" }},
		{"ingress rule with empty from and ports allows all",
			[]networkingv1.NetworkPolicy{netpol("x", "p", all(), ingress(peers()))},
			func(flow) bool { return true }},

		// Peers.
		{"podSelector alone: policy's namespace only",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(podSel(match("pod", "b")))))},
			func(f flow) bool { return f.dst != "x/a" || f.src == "x/b" }},
		{"empty podSelector peer: every pod of the namespace",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(podSel(all()))))},
			func(f flow) bool { return f.dst != "x/a" || f.srcNS() == "x" }},
		{"namespaceSelector alone",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(nsSel(match("ns", "y")))))},
			func(f flow) bool { return f.dst != "x/a" || f.srcNS() == "y" }},
		{"empty namespaceSelector: every pod",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(nsSel(all()))))},
			func(flow) bool { return true }},
		{"namespaceSelector and podSelector in one peer: AND",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(nsPodSel(match("ns", "y"), match("pod", "b")))))},
			func(f flow) bool { return f.dst != "x/a" || f.src == "y/b" }},
		{"two peers: OR",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(nsSel(match("ns", "y")), podSel(match("pod", "b")))))},
			func(f flow) bool { return f.dst != "x/a" || f.srcNS() == "y" || f.src == "x/b" }},
		{"namespaceSelector In",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(nsSel(expr("ns", metav1.LabelSelectorOpIn, "y", "z")))))},
			func(f flow) bool { return f.dst != "x/a" || f.srcNS() != "x" }},
		{"namespaceSelector NotIn",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(nsSel(expr("ns", metav1.LabelSelectorOpNotIn, "y")))))},
			func(f flow) bool { return f.dst != "x/a" || f.srcNS() != "y" }},
		{"namespaceSelector Exists",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(nsSel(expr("ns", metav1.LabelSelectorOpExists)))))},
			func(flow) bool { return true }},
		{"namespaceSelector DoesNotExist",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(nsSel(expr("ns", metav1.LabelSelectorOpDoesNotExist)))))},
			func(f flow) bool { return f.dst != "x/a" }},
		{"namespaceSelector matchExpressions with podSelector NotIn",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(nsPodSel(
				expr(corev1Name, metav1.LabelSelectorOpIn, "z"), expr("pod", metav1.LabelSelectorOpNotIn, "a", "b")))))},
			func(f flow) bool { return f.dst != "x/a" || f.src == "z/c" }},

		// Ports and protocols.
		{"numeric TCP port",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers().on(numPort(TCP, 80))))},
			func(f flow) bool { return f.dst != "x/a" || f.probe == tcp80 }},
		{"port without protocol defaults to TCP",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers().on(noProto(81))))},
			func(f flow) bool { return f.dst != "x/a" || f.probe == tcp81 }},
		{"UDP port",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers().on(numPort(UDP, 81))))},
			func(f flow) bool { return f.dst != "x/a" || f.probe == udp81 }},
		{"SCTP port",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers().on(numPort(SCTP, 80))))},
			func(f flow) bool { return f.dst != "x/a" || f.probe == sctp80 }},
		{"protocol without port: every port of it",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers().on(protoOnly(UDP))))},
			func(f flow) bool { return f.dst != "x/a" || f.proto == ProtoUDP }},
		{"endPort range",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers().on(portRange(TCP, 80, 81))))},
			func(f flow) bool { return f.dst != "x/a" || f.proto == ProtoTCP }},
		{"endPort range starting above 80",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers().on(portRange(SCTP, 81, 90))))},
			func(f flow) bool { return f.dst != "x/a" || f.probe == sctp81 }},
		{"named ingress port resolves on the selected pod",
			[]networkingv1.NetworkPolicy{netpol("x", "p", all(), ingress(peers().on(named(UDP, "serve-81-udp"))))},
			func(f flow) bool { return f.dstNS() != "x" || f.probe == udp81 }},
		{"named ingress port that no container has matches nothing",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers().on(named(TCP, "serve-99-tcp"))))},
			func(f flow) bool { return f.dst != "x/a" }},
		{"named port on the wrong protocol matches nothing",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers().on(named(UDP, "serve-80-tcp"))))},
			func(f flow) bool { return f.dst != "x/a" }},
		{"named egress port resolves on the peer",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, types(typeEg), egress(peers(nsSel(match("ns", "y"))).on(named(SCTP, "serve-80-sctp"))))},
			func(f flow) bool { return f.src != "x/a" || (f.dstNS() == "y" && f.probe == sctp80) }},
		{"named egress port with any peer",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, types(typeEg), egress(peers().on(named(TCP, "serve-81-tcp"))))},
			func(f flow) bool { return f.src != "x/a" || f.probe == tcp81 }},
		{"named egress port towards an ipBlock of pods",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, types(typeEg), egress(peers(cidr("10.244.2.0/24")).on(named(TCP, "serve-80-tcp"))))},
			func(f flow) bool { return f.src != "x/a" || (f.dstNS() == "y" && f.probe == tcp80) }},
		{"ICMP is allowed by a rule without ports",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(nsSel(match("ns", "y")))))},
			func(f flow) bool { return f.dst != "x/a" || f.srcNS() == "y" }},
		{"ICMP is not allowed by a rule with ports",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(nsSel(match("ns", "y"))).on(numPort(TCP, 80), protoOnly(UDP), protoOnly(SCTP))))},
			func(f flow) bool { return f.dst != "x/a" || (f.srcNS() == "y" && f.probe != icmp && f.probe != tcp81) }},

		// ipBlock.
		{"ipBlock except covering one pod IP",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(cidr("10.244.0.0/16", "10.244.2.11/32"))))},
			func(f flow) bool { return f.dst != "x/a" || f.src != "y/b" }},
		{"ipBlock except a namespace, another policy allows back one pod inside the hole",
			[]networkingv1.NetworkPolicy{
				netpol("x", "p", xa, ingress(peers(cidr("10.244.0.0/16", "10.244.2.0/24")))),
				netpol("x", "q", xa, ingress(peers(cidr("10.244.2.11/32")))),
			},
			func(f flow) bool { return f.dst != "x/a" || f.srcNS() != "y" || f.src == "y/b" }},
		{"egress ipBlock",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, egress(peers(cidr("10.244.3.0/24"))), types(typeEg))},
			func(f flow) bool { return f.src != "x/a" || f.dstNS() == "z" }},
		{"ipBlock with host bits is masked",
			[]networkingv1.NetworkPolicy{netpol("x", "p", xa, ingress(peers(cidr("10.244.3.77/24"))))},
			func(f flow) bool { return f.dst != "x/a" || f.srcNS() == "z" }},

		// Union and both ends.
		{"union of policies selecting one pod",
			[]networkingv1.NetworkPolicy{
				netpol("x", "p", xa, ingress(peers(nsSel(match("ns", "y"))).on(numPort(TCP, 80)))),
				netpol("x", "q", all(), ingress(peers(nsSel(match("ns", "z"))).on(protoOnly(UDP)))),
			},
			func(f flow) bool {
				return f.dstNS() != "x" || (f.srcNS() == "z" && f.proto == ProtoUDP) || (f.dst == "x/a" && f.srcNS() == "y" && f.probe == tcp80)
			}},
		{"egress of the source and ingress of the destination must both allow",
			[]networkingv1.NetworkPolicy{
				netpol("x", "p", xa, types(typeEg), egress(peers(podSel(match("pod", "b"))))),
				netpol("x", "q", match("pod", "b"), ingress(peers(podSel(match("pod", "c"))))),
			},
			func(f flow) bool { return (f.src != "x/a" || f.dst == "x/b") && (f.dst != "x/b" || f.src == "x/c") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := standardState()
			s.Policies = tc.policies
			checkMatrix(t, s, tc.want)
		})
	}
}

const corev1Name = "kubernetes.io/metadata.name"

func noProto(n int32) networkingv1.NetworkPolicyPort {
	p := numPort(TCP, n)
	p.Protocol = nil
	return p
}

func protoOnly(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto}
}

// TestNodesAndWorld checks traffic between pods and non-pod addresses.
func TestNodesAndWorld(t *testing.T) {
	xa, xb := "x/a", "x/b" // x/a runs on node-1, x/b on node-2
	type check struct {
		src, dst string // pod key, "node1", "node2" or "external"
		p        probe
		want     bool
	}
	tests := []struct {
		name     string
		policies []networkingv1.NetworkPolicy
		checks   []check
	}{
		{"own node is always allowed in, other nodes are not",
			[]networkingv1.NetworkPolicy{netpol("x", "deny", all())},
			[]check{
				{"node1", xa, tcp80, true}, {"node1", xa, icmp, true}, {"node2", xa, tcp80, false},
				{"node2", xb, udp81, true}, {"node1", xb, udp81, false}, {"external", xa, tcp80, false},
				{xa, "node2", tcp80, true}, {xa, "external", icmp, true},
			}},
		{"ingress ipBlock matching node addresses",
			[]networkingv1.NetworkPolicy{netpol("x", "p", all(), ingress(peers(cidr("10.0.0.0/24"))))},
			[]check{
				{"node2", xa, tcp80, true}, {"node1", xb, tcp80, true}, {"external", xa, tcp80, false}, {"y/a", xa, tcp80, false},
			}},
		{"ingress ipBlock except the remote node",
			[]networkingv1.NetworkPolicy{netpol("x", "p", all(), ingress(peers(cidr("10.0.0.0/24", "10.0.0.2/32"))))},
			[]check{{"node2", xa, tcp80, false}, {"node1", xb, tcp80, true}}},
		{"egress to a node CIDR covers this node and remote nodes",
			[]networkingv1.NetworkPolicy{netpol("x", "p", all(), types(typeEg), egress(peers(cidr("10.0.0.0/24"))))},
			[]check{{xa, "node1", tcp80, true}, {xa, "node2", udp80, true}, {xb, "node1", icmp, true}, {xa, "y/a", tcp80, false}, {xa, "external", tcp80, false}}},
		{"egress to one node address only",
			[]networkingv1.NetworkPolicy{netpol("x", "p", all(), types(typeEg), egress(peers(cidr("10.0.0.2/32"))))},
			[]check{{xa, "node2", tcp80, true}, {xa, "node1", tcp80, false}, {xb, "node2", tcp80, true}}},
		{"egress to the world except the cluster",
			[]networkingv1.NetworkPolicy{netpol("x", "p", all(), types(typeEg), egress(peers(cidr("0.0.0.0/0", "10.0.0.0/8")).on(numPort(TCP, 443))))},
			[]check{{xa, "external", probe{ProtoTCP, 443}, true}, {xa, "external", tcp80, false}, {xa, "node2", probe{ProtoTCP, 443}, false}, {xa, "y/a", probe{ProtoTCP, 443}, false}}},
		{"no policy: world and nodes reach pods",
			nil,
			[]check{{"external", xa, tcp80, true}, {"node2", xa, sctp81, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := standardState()
			s.Policies = tc.policies
			nodes := compileNodes(t, s)
			addr := func(n string) netip.Addr {
				switch n {
				case "node1":
					return node1
				case "node2":
					return node2
				case "external":
					return external
				}
				return ip(s, n)
			}
			for _, c := range tc.checks {
				if got := Simulate(nodes, addr(c.src), addr(c.dst), c.p.proto, c.p.port); got != c.want {
					t.Errorf("%s -> %s %v: got %v, want %v", c.src, c.dst, c.p, got, c.want)
				}
			}
		})
	}
}

// TestKeys checks the compiled entries themselves on one endpoint.
func TestKeys(t *testing.T) {
	s := standardState()
	s.Policies = []networkingv1.NetworkPolicy{netpol("x", "p", match("pod", "a"),
		ingress(peers().on(numPort(TCP, 80), portRange(UDP, 1000, 1002), named(SCTP, "serve-81-sctp"))),
		egress(peers()))}
	r, err := Compile(s, Local{NodeName: "node-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep := ip(s, "x/a")
	got := r.Endpoints[ep]
	k := func(id uint32, port uint16, proto uint8, eg bool) PolicyKey {
		return PolicyKey{Endpoint: ep, Identity: id, Port: port, Proto: proto, Egress: eg}
	}
	want := EndpointPolicy{IngressEnforced: true, EgressEnforced: true, Keys: []PolicyKey{
		k(0, 80, ProtoTCP, false), k(0, 1000, ProtoUDP, false), k(0, 1001, ProtoUDP, false), k(0, 1002, ProtoUDP, false),
		k(0, 81, ProtoSCTP, false), k(IdentityHost, 0, 0, false), k(0, 0, 0, true),
	}}
	slices.SortFunc(want.Keys, compareKeys)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("x/a:\n got %+v\nwant %+v", got, want)
	}
	if other := r.Endpoints[ip(s, "x/c")]; other.IngressEnforced || other.EgressEnforced || len(other.Keys) > 0 {
		t.Errorf("x/c is not selected but got %+v", other)
	}
	if _, ok := r.Endpoints[ip(s, "x/b")]; ok {
		t.Errorf("x/b runs on node-2 but is an endpoint of node-1")
	}
	if n := len(r.Endpoints); n != 6 {
		t.Errorf("node-1 has %d endpoints, want 6 (a and c of each namespace)", n)
	}
}
