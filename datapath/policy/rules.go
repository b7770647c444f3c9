package policy

import (
	"slices"

	"k8s.io/apimachinery/pkg/labels"
)

// compileRules turns the rules of a policy of namespace ns into identities.
func (c *compiler) compileRules(rules []rule, ns string, egress bool) []compiledRule {
	out := make([]compiledRule, 0, len(rules))
	for _, r := range rules {
		out = append(out, c.compileRule(r, ns, egress))
	}
	return out
}

// compileRule computes the peers of r and its endpoint-independent entries.
//
// ports: "If this field is empty or missing, this rule matches all ports
// (traffic not restricted by port)": one (peer, 0, ProtoAny) entry per
// peer, the only kind of entry ICMP can match. A port without a number
// gives (peer, 0, proto); a number or an endPort range gives one entry per
// port.
//
// Named egress ports are resolved against the peer: each peer identity gets
// the numbers its pods give the name (on the rule's protocol). Pods that
// share an identity share their entries, so this is the union over those
// pods: exact unless two pods of the same identity (same namespace, labels
// and CIDR set) give one name different numbers, in which case each of them
// is reachable on the other's number too. Peers that are not pods (ipBlock
// addresses, nodes) have no named ports and get no entry. With any peer
// (empty "to"), the name is resolved against every pod identity of the
// cluster, so the rule still allows nothing towards non-pod addresses.
func (c *compiler) compileRule(r rule, ns string, egress bool) compiledRule {
	var cr compiledRule
	peers, targets, fixed := c.scratchIDs[:0], c.scratchTargets[:0], c.scratchEntries[:0]
	if r.any {
		peers, targets = append(peers, IdentityAny), c.pods
	} else {
		for _, id := range c.idents {
			for _, p := range r.peers {
				if peerMatches(p, ns, id) {
					peers = append(peers, id.id)
					targets = append(targets, id)
					break
				}
			}
		}
	}
	if len(r.ports) == 0 {
		for _, id := range peers {
			fixed = append(fixed, entry{id, 0, ProtoAny})
		}
	}
	for _, p := range r.ports {
		switch {
		case p.name == "":
			for _, id := range peers {
				for n := int(p.first); n <= int(p.last); n++ {
					fixed = append(fixed, entry{id, uint16(n), p.proto})
				}
			}
		case !egress:
			cr.named = append(cr.named, p)
		default:
			for _, t := range targets {
				for _, n := range t.ports[namedPort{p.name, p.proto}] {
					fixed = append(fixed, entry{t.id, n, p.proto})
				}
			}
		}
	}
	cr.fixed = slices.Clone(fixed)
	if len(cr.named) > 0 {
		cr.peers = slices.Clone(peers)
	}
	if !r.any {
		c.scratchTargets = targets[:0]
	}
	c.scratchIDs, c.scratchEntries = peers[:0], fixed[:0]
	return cr
}

// peerMatches implements one NetworkPolicyPeer of a policy in namespace ns
// against identity id:
//
//	podSelector: "If namespaceSelector is also set, then the
//	NetworkPolicyPeer as a whole selects the pods matching podSelector in
//	the Namespaces selected by NamespaceSelector. Otherwise it selects the
//	pods matching podSelector in the policy's own namespace."
//	namespaceSelector: "Otherwise it selects all pods in the namespaces
//	selected by namespaceSelector."
//	ipBlock: "IPBlock describes a particular CIDR [...] The except entry
//	describes CIDRs that should not be included within this rule."
//
// Selectors only select pods. An ipBlock selects any identity, pods
// included, whose addresses all lie in cidr and outside every except,
// which the identity's CIDR sets say exactly (see ident.sets).
func peerMatches(p peer, ns string, id *ident) bool {
	if p.block != nil {
		return id.inBlock(p.block)
	}
	if !id.pod || (p.pods == nil && p.namespaces == nil) {
		return false
	}
	if p.namespaces != nil {
		if !p.namespaces.Matches(id.nsLabels) {
			return false
		}
	} else if id.ns != ns {
		return false
	}
	return p.pods == nil || p.pods.Matches(id.labels)
}

// ident is one identity and what policies match against.
type ident struct {
	id  uint32
	key string
	// pod identities carry their namespace, its labels and the pod labels.
	pod      bool
	ns       string
	nsLabels labels.Set
	labels   labels.Set
	// sets holds, for each address that resolves to the identity, the
	// policy prefixes containing it. For every identity but IdentityHost
	// all addresses have the same set (it is part of the key).
	sets []bitset
	// ports maps the named container ports of the identity's pods to their
	// numbers (union over the pods).
	ports map[namedPort][]uint16
}

type namedPort struct {
	name  string
	proto uint8
}

// inBlock reports whether every address of id is in b: the address's set
// holds b.cidr and no except. IdentityHost, whose addresses may differ,
// matches only when all of them are in b (it never allows traffic to a
// node address that b excludes; a block covering only some of this node's
// addresses does not match the node).
func (id *ident) inBlock(b *block) bool {
	if len(id.sets) == 0 {
		return false
	}
	for _, set := range id.sets {
		if !set.has(b.cidrIndex) {
			return false
		}
		for _, e := range b.exceptIndex {
			if set.has(e) {
				return false
			}
		}
	}
	return true
}
