package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// onA returns a policy isolating x/a for ingress, allowing any source on ps.
func onA(ps ...networkingv1.NetworkPolicyPort) []networkingv1.NetworkPolicy {
	return []networkingv1.NetworkPolicy{netpol("x", "p", sel("pod", "a"), ingressRules(anyRule().on(ps...)))}
}

// fromA returns a policy isolating x/a for egress only (policyTypes set:
// the default would isolate ingress too), allowing any destination on ps.
func fromA(ps ...networkingv1.NetworkPolicyPort) []networkingv1.NetworkPolicy {
	return []networkingv1.NetworkPolicy{netpol("x", "p", sel("pod", "a"), types(egr), egressRules(anyRule().on(ps...)))}
}

func TestPorts(t *testing.T) {
	runOracle(t, testModel(), []oracleTest{
		{"protocol defaults to TCP", onA(portNum(80)), []want{
			allow("y/a", "x/a", TCP80), deny("y/a", "x/a", TCP81), deny("y/a", "x/a", UDP80), deny("y/a", "x/a", SCTP80),
		}},
		{"protocol without port allows all its ports", onA(protoOnly(udp)), []want{
			allow("y/a", "x/a", UDP80), allow("y/a", "x/a", UDP81), deny("y/a", "x/a", TCP80), deny("y/a", "x/a", SCTP81),
		}},
		{"SCTP is not TCP", onA(portNum(81, sctp)), []want{
			allow("y/a", "x/a", SCTP81), deny("y/a", "x/a", TCP81), deny("y/a", "x/a", UDP81), deny("y/a", "x/a", SCTP80),
		}},
		{"UDP does not allow TCP", onA(portNum(81, udp)), []want{
			allow("y/a", "x/a", UDP81), deny("y/a", "x/a", TCP81),
		}},
		{"endPort range inclusive", onA(portRange(80, 81, tcp)), []want{
			allow("y/a", "x/a", TCP80), allow("y/a", "x/a", TCP81), deny("y/a", "x/a", PortProtocol{82, tcp}),
			deny("y/a", "x/a", PortProtocol{79, tcp}), deny("y/a", "x/a", UDP80),
		}},
		{"endPort equal to port", onA(portRange(81, 81, udp)), []want{
			allow("y/a", "x/a", UDP81), deny("y/a", "x/a", UDP80),
		}},
		{"endPort range excluding the served ports", onA(portRange(1, 79, tcp)), []want{
			deny("y/a", "x/a", TCP80), deny("y/a", "x/a", TCP81), allow("y/a", "x/a", PortProtocol{22, tcp}),
		}},
		{"several ports in one rule OR", onA(portNum(80, tcp), portNum(81, udp)), []want{
			allow("y/a", "x/a", TCP80), allow("y/a", "x/a", UDP81), deny("y/a", "x/a", TCP81), deny("y/a", "x/a", UDP80),
		}},
		{"ingress named port", onA(portName("serve-81-tcp")), []want{
			allow("y/a", "x/a", TCP81), deny("y/a", "x/a", TCP80), deny("y/a", "x/a", UDP81),
		}},
		{"named port UDP", onA(portName("serve-80-udp", udp)), []want{
			allow("y/a", "x/a", UDP80), deny("y/a", "x/a", TCP80), deny("y/a", "x/a", UDP81),
		}},
		{"named port SCTP", onA(portName("serve-81-sctp", sctp)), []want{
			allow("y/a", "x/a", SCTP81), deny("y/a", "x/a", TCP81),
		}},
		{"named port whose protocol differs from the rule matches nothing", onA(portName("serve-80-udp")), []want{
			deny("y/a", "x/a", TCP80), deny("y/a", "x/a", UDP80),
		}},
		{"named port that does not exist matches nothing", onA(portName("no-such-port")), []want{
			deny("y/a", "x/a", TCP80), deny("y/a", "x/a", TCP81),
		}},
		{"egress named port", fromA(portName("serve-80-tcp")), []want{
			allow("x/a", "y/a", TCP80), deny("x/a", "y/a", TCP81), allow("x/a", "x/a", TCP80),
		}},
		{"egress numeric port", fromA(portNum(81, udp)), []want{
			allow("x/a", "z/c", UDP81), deny("x/a", "z/c", TCP81),
		}},
	})
}

// TestNamedPortResolvesAtDestination uses a model where only some pods
// name port 8080 "web" (and x/a calls port 9090 "web"), so resolving
// against the wrong pod gives a different answer.
func TestNamedPortResolvesAtDestination(t *testing.T) {
	m := testModel()
	web := func(port int32) []corev1.ContainerPort {
		return append(StandardContainerPorts(), corev1.ContainerPort{Name: "web", ContainerPort: port})
	}
	for key, port := range map[string]int32{"x/a": 9090, "y/a": 8080} {
		i := indexOf(m, key)
		m.Pods[i].Ports = web(port)
	}
	http := PortProtocol{8080, tcp}
	runOracle(t, m, []oracleTest{
		{"ingress resolves against the selected pod", []networkingv1.NetworkPolicy{
			netpol("y", "p", all(), ingressRules(anyRule().on(portName("web")))),
		}, []want{
			allow("x/a", "y/a", http), deny("x/a", "y/b", http), deny("x/a", "y/a", PortProtocol{9090, tcp}),
		}},
		{"egress resolves against the destination pod, not the source", []networkingv1.NetworkPolicy{
			netpol("x", "p", sel("pod", "a"), types(egr), egressRules(anyRule().on(portName("web")))),
		}, []want{
			allow("x/a", "y/a", http), deny("x/a", "y/b", http), deny("x/a", "y/b", PortProtocol{9090, tcp}),
			allow("x/a", "x/a", PortProtocol{9090, tcp}),
		}},
	})
	// An IP has no named ports.
	v := Allowed(fromA(portName("serve-80-tcp")), m, Traffic{From: PodPeer(mustPod(m, "x/a")), To: IPPeer("192.168.1.1"), Port: 80, Protocol: tcp})
	if v.Allowed {
		t.Errorf("named port matched a bare IP: %s", v)
	}
}

func indexOf(m Model, key string) int {
	for i, p := range m.Pods {
		if p.Key() == key {
			return i
		}
	}
	panic("no pod " + key)
}

func TestICMP(t *testing.T) {
	runOracle(t, testModel(), []oracleTest{
		{"not isolated: ICMP allowed", []networkingv1.NetworkPolicy{
			netpol("x", "p", sel("pod", "a")),
		}, []want{
			allow("y/a", "x/b", ICMP), deny("y/a", "x/a", ICMP),
		}},
		{"a rule without ports allows ICMP", []networkingv1.NetworkPolicy{
			netpol("x", "p", sel("pod", "a"), ingressRules(peers(nsPeer(selp("ns", "y"))))),
		}, []want{
			allow("y/a", "x/a", ICMP), deny("z/a", "x/a", ICMP),
		}},
		{"a rule with ports never allows ICMP", onA(portNum(80), protoOnly(tcp), protoOnly(udp), protoOnly(sctp)), []want{
			deny("y/a", "x/a", ICMP), allow("y/a", "x/a", TCP80),
		}},
		{"egress rule without ports allows ICMP", []networkingv1.NetworkPolicy{
			netpol("x", "p", sel("pod", "a"), egressRules(peers(podPeer(selp("pod", "b"))))),
		}, []want{
			allow("x/a", "x/b", ICMP), deny("x/a", "x/c", ICMP),
		}},
		{"egress rule with ports denies ICMP", fromA(portRange(1, 65535, tcp)), []want{
			deny("x/a", "y/a", ICMP),
		}},
	})
}
