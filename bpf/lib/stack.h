/* Sharing connections with the node's stack (beside kube-proxy).
 *
 * The programs forward pod-to-pod traffic past the node's stack, both ways
 * on every node (redirect to a local pod, bpf_redirect_neigh or the VXLAN
 * device to a remote one), so netfilter never sees half a connection.
 * Everything else goes through the stack both ways, where kube-proxy's
 * iptables rules may translate it:
 *
 *   - a pod's packet to the Service CIDR is passed to the stack marked
 *     MARK_SERVICE, untouched by policy; where the translated packet leaves
 *     the stack (to_container for a backend on this node, to_netdev or
 *     to_overlay for one on another node) stack_check enforces the pod's
 *     egress policy towards the backend (and a local backend's ingress)
 *     and tracks the translated connection CT_F_VIA_STACK;
 *   - a packet of a CT_F_VIA_STACK connection (the backend's replies) is
 *     passed to the stack, which reverses the translation;
 *   - a packet from a source that is not a pod of another node (a node, the
 *     world, a NodePort client after SNAT) is forwarded by the stack to the
 *     pod; to_container checks it.
 */
#ifndef CNILAB_STACK_H
#define CNILAB_STACK_H

#include <linux/bpf.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "config.h"
#include "maps.h"
#include "flow.h"
#include "conntrack.h"
#include "policy.h"
#include "forward.h"

/* skb->mark bit of a pod's packet to a Service address whose policy waits
 * for translation. kube-proxy uses 0x4000 (masquerade) and 0x8000 (drop).
 */
#define MARK_SERVICE 0x00200000U

static __always_inline int to_service(__u32 daddr)
{
	return cfg_service_mask != 0 &&
	       (daddr & cfg_service_mask) == cfg_service_net;
}

/* from_remote_pod tells whether saddr is a pod of another node. */
static __always_inline int from_remote_pod(__u32 saddr)
{
	return lookup_remote(saddr) != NULL;
}

/* stack_source is, for a MARK_SERVICE packet leaving the stack, the local
 * pod that sent it (and clears the mark); NULL for any other packet, and
 * when the stack masqueraded the source (hairpin): that is checked as the
 * node's traffic.
 */
static __always_inline struct endpoint_info *stack_source(struct __sk_buff *skb,
							  struct iphdr *ip)
{
	struct endpoint_info *src;

	if (!(skb->mark & MARK_SERVICE))
		return NULL;
	skb->mark &= ~MARK_SERVICE;
	src = lookup_endpoint(ip->saddr);
	if (!src || src->ifindex != skb->ingress_ifindex)
		return NULL;
	return src;
}

/* stack_egress enforces, where a pod's MARK_SERVICE packet leaves the node
 * (underlay or VXLAN device), the pod's egress policy towards the
 * translated destination, and tracks the translated connection
 * CT_F_VIA_STACK so that its replies go back through the stack.
 */
static __always_inline int stack_egress(struct __sk_buff *skb, struct iphdr *ip)
{
	struct obs o = { .mask = OBS_EGRESS, .peer = PEER_IPCACHE };
	struct endpoint_info *src;
	struct flow f = {};
	__u32 ctf;
	int reason;

	src = stack_source(skb, ip);
	if (!src)
		return TC_ACT_OK;
	reason = parse_flow(skb, ip, &f);
	if (reason)
		return drop(skb, &f, &o, OBS_EGRESS, reason);
	if (enforce(skb, &f, src, NULL, &o, CT_F_VIA_STACK, &ctf) != TC_ACT_OK)
		return TC_ACT_SHOT;
	count_forwarded(skb, OBS_EGRESS);
	return TC_ACT_OK;
}

#endif /* CNILAB_STACK_H */
