package policy

import (
	"net/netip"

	networkingv1 "k8s.io/api/networking/v1"
)

// peersMatch implements the peer list of a rule (spec.ingress[].from,
// spec.egress[].to) of a policy in namespace policyNS:
//
//	"If this field is empty or missing, this rule matches all sources
//	(traffic not restricted by source). If this field is present and
//	contains at least one item, this rule allows traffic only if the
//	traffic matches at least one item in the from list."
func peersMatch(peers []networkingv1.NetworkPolicyPeer, policyNS string, other Peer, m Model) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if peerMatches(p, policyNS, other, m) {
			return true
		}
	}
	return false
}

// peerMatches implements one NetworkPolicyPeer:
//
//	podSelector: "If namespaceSelector is also set, then the
//	NetworkPolicyPeer as a whole selects the Pods matching podSelector in
//	the Namespaces selected by NamespaceSelector. Otherwise it selects the
//	Pods matching podSelector in the policy's own Namespace."
//	namespaceSelector: "If podSelector is also set, then the
//	NetworkPolicyPeer as a whole selects the Pods matching podSelector in
//	the Namespaces selected by namespaceSelector. Otherwise it selects all
//	Pods in the Namespaces selected by namespaceSelector."
//	ipBlock: "IPBlock defines policy on a particular IPBlock."
//
// Selectors only ever select pods. An ipBlock is matched against the peer's
// IP whether or not the peer is a pod, as most implementations do (and as
// the upstream suite's CIDR tests on pod IPs require). A peer that sets
// nothing, or an ipBlock together with a selector, is invalid (Validate
// rejects it) and matches nothing.
func peerMatches(p networkingv1.NetworkPolicyPeer, policyNS string, other Peer, m Model) bool {
	if p.IPBlock != nil {
		return p.PodSelector == nil && p.NamespaceSelector == nil && ipBlockContains(*p.IPBlock, other.IP)
	}
	if other.Pod == nil || (p.PodSelector == nil && p.NamespaceSelector == nil) {
		return false
	}
	pod := *other.Pod
	if p.NamespaceSelector != nil {
		if !selects(p.NamespaceSelector, m.NamespaceLabels(pod.Namespace)) {
			return false
		}
	} else if pod.Namespace != policyNS {
		return false
	}
	return p.PodSelector == nil || selects(p.PodSelector, pod.Labels)
}

// ipBlockContains implements IPBlock:
//
//	cidr: "cidr is a string representing the IPBlock Valid examples are
//	"192.168.1.0/24" or "2001:db8::/64""
//	except: "except is a slice of CIDRs that should not be included within
//	an IPBlock [...] Except values will be rejected if they are outside the
//	cidr range"
//
// An empty or unparsable IP matches nothing.
func ipBlockContains(b networkingv1.IPBlock, ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !cidr.Contains(addr) {
		return false
	}
	for _, e := range b.Except {
		ex, err := netip.ParsePrefix(e)
		if err != nil || ex.Contains(addr) {
			return false
		}
	}
	return true
}
