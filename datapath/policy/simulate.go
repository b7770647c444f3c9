package policy

import (
	"net/netip"
	"slices"
)

// Lookup resolves addr the way the datapath's ipcache does: the identity
// of the longest prefix containing it, IdentityWorld when none does.
func (r Result) Lookup(addr netip.Addr) uint32 {
	addr = addr.Unmap()
	best, id := -1, IdentityWorld
	for p, v := range r.IPCache {
		if p.Bits() > best && p.Contains(addr) {
			best, id = p.Bits(), v
		}
	}
	return id
}

// Allows reports whether this node's datapath lets the first packet of a
// connection through at local endpoint ep in one direction (egress: ep
// sends to peer; ingress: ep receives from peer), proto and port being the
// packet's (port is the destination port, ignored for protocols other
// than TCP, UDP and SCTP). An address that is not a local endpoint, or a
// direction that is not enforced, is allowed. Otherwise the peer's
// identity is looked up in the ipcache and the keys in the order given on
// PolicyKey. Replies are conntrack's business, not modelled here.
func (r Result) Allows(ep, peer netip.Addr, egress bool, proto uint8, port uint16) bool {
	st, ok := r.Endpoints[ep.Unmap()]
	if !ok || !enforced(st, egress) {
		return true
	}
	if proto != ProtoTCP && proto != ProtoUDP && proto != ProtoSCTP {
		port = 0
	}
	id := r.Lookup(peer)
	for _, k := range [][3]uint32{
		{id, uint32(port), uint32(proto)}, {id, 0, uint32(proto)}, {id, 0, 0},
		{0, uint32(port), uint32(proto)}, {0, 0, uint32(proto)}, {0, 0, 0},
	} {
		key := PolicyKey{Endpoint: ep.Unmap(), Identity: k[0], Port: uint16(k[1]), Proto: uint8(k[2]), Egress: egress}
		if slices.Contains(st.Keys, key) {
			return true
		}
	}
	return false
}

func enforced(st EndpointPolicy, egress bool) bool {
	if egress {
		return st.EgressEnforced
	}
	return st.IngressEnforced
}

// Simulate returns the cluster-wide verdict for a new connection from src
// to dst, given the Result of every node: the egress of src on the node
// where src is an endpoint and the ingress of dst on the node where dst is
// one must both allow it.
func Simulate(nodes []Result, src, dst netip.Addr, proto uint8, port uint16) bool {
	for _, r := range nodes {
		if !r.Allows(src, dst, true, proto, port) || !r.Allows(dst, src, false, proto, port) {
			return false
		}
	}
	return true
}
