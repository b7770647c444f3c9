package cases

import (
	networkingv1 "k8s.io/api/networking/v1"

	pol "github.com/cnilab/cnilab/e2e/policy"
)

// portVariant is one ports list of a rule, with the probes of
// pol.AllProbes it opens, worked out by hand.
type portVariant struct {
	name  string
	ports []networkingv1.NetworkPolicyPort
	tags  []string
	open  []pol.PortProtocol
}

var (
	t80, t81 = pol.TCP80, pol.TCP81
	u80, u81 = pol.UDP80, pol.UDP81
	s80, s81 = pol.SCTP80, pol.SCTP81
)

func opens(pps ...pol.PortProtocol) []pol.PortProtocol { return pps }

var portVariants = []portVariant{
	{"tcp-80", []networkingv1.NetworkPolicyPort{tcp(80)}, tags("numbered-port", "tcp"), opens(t80)},
	{"tcp-81", []networkingv1.NetworkPolicyPort{tcp(81)}, tags("numbered-port", "tcp"), opens(t81)},
	{"udp-80", []networkingv1.NetworkPolicyPort{udp(80)}, tags("numbered-port", "udp"), opens(u80)},
	{"udp-81", []networkingv1.NetworkPolicyPort{udp(81)}, tags("numbered-port", "udp"), opens(u81)},
	{"sctp-80", []networkingv1.NetworkPolicyPort{sctp(80)}, tags("numbered-port", "sctp"), opens(s80)},
	{"sctp-81", []networkingv1.NetworkPolicyPort{sctp(81)}, tags("numbered-port", "sctp"), opens(s81)},
	{"port-81-default-protocol", []networkingv1.NetworkPolicyPort{port(81)}, tags("numbered-port", "tcp"), opens(t81)},
	{"named-serve-80-tcp", []networkingv1.NetworkPolicyPort{named("serve-80-tcp")}, tags("named-port", "tcp"), opens(t80)},
	{"named-serve-81-udp", []networkingv1.NetworkPolicyPort{named("serve-81-udp", "UDP")}, tags("named-port", "udp"), opens(u81)},
	{"named-serve-81-sctp", []networkingv1.NetworkPolicyPort{named("serve-81-sctp", "SCTP")}, tags("named-port", "sctp"), opens(s81)},
	{"named-serve-80-udp-as-tcp", []networkingv1.NetworkPolicyPort{named("serve-80-udp")}, tags("named-port", "tcp", "udp"), opens()},
	{"named-missing", []networkingv1.NetworkPolicyPort{named("serve-99-tcp")}, tags("named-port", "tcp"), opens()},
	{"protocol-tcp", []networkingv1.NetworkPolicyPort{protocol("TCP")}, tags("protocol", "tcp"), opens(t80, t81)},
	{"protocol-udp", []networkingv1.NetworkPolicyPort{protocol("UDP")}, tags("protocol", "udp"), opens(u80, u81)},
	{"protocol-sctp", []networkingv1.NetworkPolicyPort{protocol("SCTP")}, tags("protocol", "sctp"), opens(s80, s81)},
	{"range-tcp-80-81", []networkingv1.NetworkPolicyPort{portRange(80, 81, "TCP")}, tags("endport", "tcp"), opens(t80, t81)},
	{"range-udp-81-81", []networkingv1.NetworkPolicyPort{portRange(81, 81, "UDP")}, tags("endport", "udp"), opens(u81)},
	{"range-sctp-81-90", []networkingv1.NetworkPolicyPort{portRange(81, 90, "SCTP")}, tags("endport", "sctp"), opens(s81)},
	{"range-tcp-1-79", []networkingv1.NetworkPolicyPort{portRange(1, 79, "TCP")}, tags("endport", "tcp"), opens()},
	{"tcp-80-and-udp-81", []networkingv1.NetworkPolicyPort{tcp(80), udp(81)}, tags("numbered-port", "tcp", "udp"), opens(t80, u81)},
	{"named-serve-80-tcp-and-sctp-81", []networkingv1.NetworkPolicyPort{named("serve-80-tcp"), sctp(81)}, tags("named-port", "numbered-port", "tcp", "sctp"), opens(t80, s81)},
}

// generatedPorts is ports × protocols × directions for x/a, every peer:
// which ports and protocols a ports list opens. Each probes every port
// and protocol of the model and ICMP.
func generatedPorts() []pol.Case {
	var cs []pol.Case
	for _, d := range directions {
		for _, p := range portVariants {
			name := "generated/ports/" + d.name + "/" + p.name
			np := policy("gen-"+d.name+"-"+p.name, selectPod("a"), d.rules(onPorts(p.ports...)))
			ts := append(tags("generated", d.name), p.tags...)
			cs = append(cs, newCase(name, d.name+" of x/a allowed on "+p.name, ts,
				create(np, probing(pol.AllProbes()...), expect(portExpectations(d, p)...))))
		}
	}
	return cs
}

// portExpectations is what a direction of x/a restricted to p should
// allow: everything closed but p's open probes, towards every pod.
func portExpectations(d direction, p portVariant) []pol.ExpectRule {
	from, to := "*", "x/a"
	if d.name == "egress" {
		from, to = "x/a", "*"
	}
	rs := []pol.ExpectRule{denied(from, to)}
	if len(p.open) > 0 {
		rs = append(rs, allowed(from, to, p.open...))
	}
	return rs
}
