package policy

import (
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
)

// Allowed judges traffic t under policies in model m. The policies must be
// valid (see Validate) and have their IP templates resolved (see Resolve).
//
// A connection is allowed iff the egress of its source allows it AND the
// ingress of its destination allows it. Each direction allows when the pod
// at that end is not isolated for the direction, or when some rule of some
// policy that isolates it allows the traffic: policies are a union, there is
// no deny and no order. Ends that are not pods (bare IPs) are never subject
// to policy.
//
// ICMP: NetworkPolicy ports only name TCP, UDP and SCTP, so, as Kubernetes
// implementations do, an ICMP packet is allowed by a rule only when that
// rule has no ports; isolation otherwise denies it.
//
// Traffic from a pod to itself is always allowed: it is delivered on the
// pod's own loopback and never reaches a network plugin, which is why the
// upstream suite and Cyclonus expect loopback to be allowed
// (Reachability.AllowLoopback) whatever the policies say.
func Allowed(policies []networkingv1.NetworkPolicy, m Model, t Traffic) Verdict {
	v := Verdict{
		Egress:  judge(policies, m, networkingv1.PolicyTypeEgress, t.From, t.To, t),
		Ingress: judge(policies, m, networkingv1.PolicyTypeIngress, t.To, t.From, t),
	}
	v.Allowed = v.Egress.Allowed && v.Ingress.Allowed
	if t.From.Pod != nil && t.To.Pod != nil && t.From.Pod.Key() == t.To.Pod.Key() {
		v.Allowed, v.Loopback = true, true
	}
	return v
}

// judge judges one direction for subject, the pod whose policies apply
// (the source for egress, the destination for ingress); other is the far
// end.
func judge(policies []networkingv1.NetworkPolicy, m Model, dir networkingv1.PolicyType, subject, other Peer, t Traffic) DirectionVerdict {
	if subject.Pod == nil {
		return DirectionVerdict{Allowed: true}
	}
	pod := *subject.Pod
	d := DirectionVerdict{Pod: pod.Key()}
	for _, np := range policies {
		if !isolates(np, pod, dir) {
			continue
		}
		d.Isolated = true
		d.Isolating = append(d.Isolating, np.Namespace+"/"+np.Name)
		for i, r := range rules(np, dir) {
			if peersMatch(r.peers, np.Namespace, other, m) && portsMatch(r.ports, t.To, t.Port, t.Protocol) {
				d.AllowedBy = append(d.AllowedBy, RuleRef{Policy: np.Namespace + "/" + np.Name, Index: i})
			}
		}
	}
	d.Allowed = !d.Isolated || len(d.AllowedBy) > 0
	return d
}

// isolates reports whether np isolates pod for dir. A policy applies to the
// pods of its own namespace only and:
//
//	spec.podSelector: "Selects the pods to which this NetworkPolicy object
//	applies. [...] An empty podSelector matches all pods in this namespace."
func isolates(np networkingv1.NetworkPolicy, pod Pod, dir networkingv1.PolicyType) bool {
	return np.Namespace == pod.Namespace &&
		slices.Contains(PolicyTypes(np), dir) &&
		selects(&np.Spec.PodSelector, pod.Labels)
}

// PolicyTypes returns the effective spec.policyTypes of np:
//
//	"If this field is not specified, it will default based on the existence
//	of ingress or egress rules; policies that contain an egress section are
//	assumed to affect egress, and all policies (whether or not they contain
//	an ingress section) are assumed to affect ingress."
//
// "Contain an egress section" means at least one egress rule: an empty
// spec.egress list is indistinguishable from a missing one on the wire.
func PolicyTypes(np networkingv1.NetworkPolicy) []networkingv1.PolicyType {
	if len(np.Spec.PolicyTypes) > 0 {
		return np.Spec.PolicyTypes
	}
	types := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if len(np.Spec.Egress) > 0 {
		types = append(types, networkingv1.PolicyTypeEgress)
	}
	return types
}

// rule is an ingress or egress rule: its peers (spec.ingress[].from or
// spec.egress[].to) and its ports.
type rule struct {
	peers []networkingv1.NetworkPolicyPeer
	ports []networkingv1.NetworkPolicyPort
}

// rules returns the rules of np for dir. "If this field is empty then this
// NetworkPolicy does not allow any traffic" (spec.ingress, spec.egress).
func rules(np networkingv1.NetworkPolicy, dir networkingv1.PolicyType) []rule {
	var rs []rule
	if dir == networkingv1.PolicyTypeIngress {
		for _, r := range np.Spec.Ingress {
			rs = append(rs, rule{peers: r.From, ports: r.Ports})
		}
		return rs
	}
	for _, r := range np.Spec.Egress {
		rs = append(rs, rule{peers: r.To, ports: r.Ports})
	}
	return rs
}
