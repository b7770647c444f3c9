package policy

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// portsMatch implements the ports of a rule (spec.ingress[].ports,
// spec.egress[].ports) for traffic to dst on port/proto:
//
//	"If this field is empty or missing, this rule matches all ports
//	(traffic not restricted by port). If this field is present and contains
//	at least one item, then this rule allows traffic only if the traffic
//	matches at least one port in the list."
//
// ICMP matches a rule only when the rule has no ports: ports can only name
// TCP, UDP and SCTP.
func portsMatch(ports []networkingv1.NetworkPolicyPort, dst Peer, port int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	if proto == ProtocolICMP {
		return false
	}
	for _, p := range ports {
		if portMatches(p, dst, port, proto) {
			return true
		}
	}
	return false
}

// portMatches implements one NetworkPolicyPort:
//
//	protocol: "The protocol (TCP, UDP, or SCTP) which traffic must match.
//	If not specified, this field defaults to TCP."
//	port: "The port on the given protocol. This can either be a numerical
//	or named port on a pod. If this field is not provided, this matches all
//	port names and numbers. If present, only traffic on the specified
//	protocol AND port will be matched."
//	endPort: "If set, indicates that the range of ports from port to endPort
//	if set, inclusive, should be allowed by the policy."
//
// A named port is resolved against the destination's container ports (for
// ingress the selected pod, for egress the peer pod): it matches when the
// destination has a container port of that name and of the rule's protocol
// whose number is the traffic's port. It matches nothing when it does not
// resolve, nor when the destination is not a pod (an IP has no named ports).
func portMatches(p networkingv1.NetworkPolicyPort, dst Peer, port int32, proto corev1.Protocol) bool {
	want := corev1.ProtocolTCP
	if p.Protocol != nil {
		want = *p.Protocol
	}
	if proto != want {
		return false
	}
	if p.Port == nil {
		return true
	}
	if p.Port.Type == intstr.Int {
		if p.EndPort != nil {
			return p.Port.IntVal <= port && port <= *p.EndPort
		}
		return p.Port.IntVal == port
	}
	if dst.Pod == nil {
		return false
	}
	for _, cp := range dst.Pod.Ports {
		cpProto := cp.Protocol
		if cpProto == "" {
			cpProto = corev1.ProtocolTCP
		}
		if cp.Name == p.Port.StrVal && cpProto == want && cp.ContainerPort == port {
			return true
		}
	}
	return false
}
