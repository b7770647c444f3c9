/* L3/L4 network policy: identities (cnilab_ipcache), per-endpoint allow
 * entries (cnilab_policy), and the verdict for a packet (enforce).
 */
#ifndef CNILAB_POLICY_H
#define CNILAB_POLICY_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "maps.h"
#include "flow.h"
#include "ipcache.h"
#include "conntrack.h"
#include "events.h"

/* policy_allows looks up the allow entries of endpoint ep for a peer of
 * identity id, in this order, and allows on the first hit:
 *
 *   (id, port, proto), (id, 0, proto), (id, 0, 0),
 *   (0, port, proto),  (0, 0, proto),  (0, 0, 0)
 *
 * dport is 0 for packets without ports (ICMP, ...): only entries with port
 * 0 match those. At most six hash lookups, no loop.
 */
static __always_inline int policy_allows(__u32 ep, __u32 id, __u16 dport,
					 __u8 proto, __u8 dir)
{
	struct policy_key key = {
		.endpoint = ep,
		.identity = id,
		.dport = dport,
		.proto = proto,
		.direction = dir,
	};

	if (dport && bpf_map_lookup_elem(&cnilab_policy, &key))
		return 1;
	key.dport = 0;
	if (proto && bpf_map_lookup_elem(&cnilab_policy, &key))
		return 1;
	key.proto = 0;
	if (bpf_map_lookup_elem(&cnilab_policy, &key))
		return 1;
	key.identity = IDENTITY_ANY;
	key.dport = dport;
	key.proto = proto;
	if (dport && bpf_map_lookup_elem(&cnilab_policy, &key))
		return 1;
	key.dport = 0;
	if (proto && bpf_map_lookup_elem(&cnilab_policy, &key))
		return 1;
	key.proto = 0;
	return bpf_map_lookup_elem(&cnilab_policy, &key) != NULL;
}

/* enforce gives the verdict for a packet from src to dst (each the local
 * endpoint, or NULL when that side is not a local pod): TC_ACT_OK to go on
 * forwarding, TC_ACT_SHOT to drop. o is what the calling hook observes
 * (events.h): OBS_EGRESS at from_container, OBS_INGRESS when dst is set.
 *
 * Tracked packets (established, replies, related ICMP errors) pass. A new
 * flow needs src's egress allowed towards the destination's identity and
 * dst's ingress allowed from the source's identity, each only where that
 * endpoint's direction is enforced; then it is tracked, also when nothing
 * was enforced, so that the replies pass whatever policies say about their
 * direction, now or later. The caller counts what passes (count_forwarded).
 *
 * A new connection's entry gets the flags in create (CT_F_VIA_STACK);
 * *ct_flags gets those of the connection's entry, so that the caller
 * forwards the packet the way its connection goes.
 */
static __always_inline int enforce(struct __sk_buff *skb, const struct flow *f,
				   const struct endpoint_info *src,
				   const struct endpoint_info *dst,
				   const struct obs *o, __u32 create,
				   __u32 *ct_flags)
{
	__u8 ev;

	if (ct_lookup(skb, f, o, ct_flags) != CT_NEW)
		return TC_ACT_OK;
	*ct_flags = create;

	if (src && (src->flags & EP_F_EGRESS_ENFORCED) &&
	    !policy_allows(f->t.saddr, ipcache_identity(f->t.daddr),
			   f->policy_dport, f->t.proto, POLICY_EGRESS))
		return drop(skb, f, o, OBS_EGRESS, DROP_POLICY);

	if (dst && o->peer != PEER_HOST && (dst->flags & EP_F_INGRESS_ENFORCED) &&
	    !policy_allows(f->t.daddr, ipcache_identity(f->t.saddr),
			   f->policy_dport, f->t.proto, POLICY_INGRESS))
		return drop(skb, f, o, OBS_INGRESS, DROP_POLICY);

	/* An ICMP error without a connection passes as policy says, but it
	 * does not start one.
	 */
	if (!f->icmp_error) {
		ct_create(f, create);
		ev = FLOW_F_NEW;
		if (ct_tcp_flags(f, 0))
			ev |= FLOW_F_CLOSING;
		flow_event(skb, f, o, o->mask, FLOW_VERDICT_FORWARDED, ev, 0);
	}
	return TC_ACT_OK;
}

/* source_valid tells whether a packet that entered host-side veth ifindex
 * carries the source address of the pod behind it. Packets from a veth no
 * endpoint is registered on are not judged.
 */
static __always_inline int source_valid(__u32 ifindex,
					const struct endpoint_info *src)
{
	if (src)
		return src->ifindex == ifindex;
	return bpf_map_lookup_elem(&cnilab_lxc, &ifindex) == NULL;
}

#endif /* CNILAB_POLICY_H */
