// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* cnilab forwarding datapath (veth mode, after Cilium).
 *
 * Every pod has a veth pair: lxcXXXX in the node's namespace, eth0 in the
 * pod with the pod IP/32 and a default route via the node's gateway IP whose
 * neighbour entry is the lxc MAC. So every packet a pod sends arrives at the
 * ingress of its lxc device, where cnilab_from_container decides:
 *
 *   local pod       -> rewrite MACs, redirect (peer) into the pod: the host
 *                      stack never sees same-node pod-to-pod traffic;
 *   remote PodCIDR  -> vxlan mode: tunnel key + redirect to the VXLAN device;
 *                      native mode: bpf_redirect_neigh to the underlay;
 *   Service CIDR    -> the stack (kube-proxy), policy after translation;
 *   anything else   -> TC_ACT_OK, the kernel routes it.
 *
 * So pod-to-pod traffic passes no node's stack, and everything else passes
 * it both ways (lib/stack.h): netfilter, kube-proxy's rules among them,
 * never sees half a connection.
 *
 * Policy (lib/policy.h) is enforced where packets enter or leave local pods:
 *
 *   cnilab_from_container  egress of the sending pod, and ingress of the
 *                          receiving pod when it is local;
 *   cnilab_from_netdev,    ingress of the local pod a packet from another
 *   cnilab_from_overlay    node is for;
 *   cnilab_to_container    ingress of a pod for what the kernel routes to it
 *                          (egress of its host-side veth): the node's own
 *                          traffic, always allowed and tracked so that the
 *                          pod's replies pass, and anything that reached the
 *                          pod without passing the hooks above.
 *
 * Every checked flow is tracked in cnilab_ct (lib/conntrack.h), whatever the
 * verdict needed, so replies pass on every node the flow crosses.
 *
 * What the programs decide is reported (lib/events.h): flow events in the
 * cnilab_events ring buffer for drops, new connections, first replies and
 * closings, from the point of view of the local endpoint (EGRESS of the
 * sender at from_container, INGRESS of the receiver), and per-CPU packet
 * and byte counters in cnilab_metrics for every packet decided on.
 *
 * All programs are SEC("tc") so they load as SchedCLS for TCX and cls_bpf.
 * Packets that are not ours are passed unchanged.
 */
#include <linux/bpf.h>
#include <linux/if_packet.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "lib/config.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/flow.h"
#include "lib/ipcache.h"
#include "lib/events.h"
#include "lib/conntrack.h"
#include "lib/policy.h"
#include "lib/forward.h"
#include "lib/stack.h"

/* In which hook a packet delivered to a local pod counts as INGRESS
 * forwarded (events.h): where bpf_redirect_peer delivers it, or in
 * to_container, which plain bpf_redirect passes.
 */
#define DELIVERED_HERE(mask) (cfg_redirect_peer ? (mask) : (mask) & ~OBS_INGRESS)

/* to_stack passes a pod's packet for the Service CIDR to the node's stack
 * (kube-proxy translates it there): tracked, so that the translated
 * replies reach the pod, reported as forwarded to the stack, and marked for
 * the policy check after translation (lib/stack.h).
 */
static __always_inline int to_stack(struct __sk_buff *skb, struct flow *f,
				    struct obs *o)
{
	__u32 ctf;

	if (ct_lookup(skb, f, o, &ctf) == CT_NEW && !f->icmp_error) {
		ct_create(f, CT_F_VIA_STACK);
		flow_event(skb, f, o, OBS_EGRESS, FLOW_VERDICT_FORWARDED,
			   FLOW_F_NEW | FLOW_F_TO_STACK, 0);
	}
	skb->mark |= MARK_SERVICE;
	return TC_ACT_OK;
}

/* Ingress of a host-side veth: packets leaving a pod. The pod may only send
 * from its own address; a new flow needs the pod's egress policy and, when
 * the destination is a local pod, that pod's ingress policy.
 */
SEC("tc")
int cnilab_from_container(struct __sk_buff *skb)
{
	struct endpoint_info *src, *dst;
	struct obs o = { .mask = OBS_EGRESS, .peer = PEER_IPCACHE };
	struct remote_info *remote;
	struct flow f = {};
	struct iphdr *ip;
	__u32 daddr, ctf;
	int reason;

	ip = ipv4_hdr(skb);
	if (!ip)
		return TC_ACT_OK;
	daddr = ip->daddr;

	src = lookup_endpoint(ip->saddr);
	if (!source_valid(skb->ingress_ifindex, src)) {
		f.t.saddr = ip->saddr;
		f.t.daddr = daddr;
		f.t.proto = ip->protocol;
		return drop(skb, &f, &o, OBS_EGRESS, DROP_INVALID_SIP);
	}
	reason = parse_flow(skb, ip, &f);
	if (reason)
		return drop(skb, &f, &o, OBS_EGRESS, reason);
	dst = lookup_endpoint(daddr);
	if (!dst && to_service(daddr))
		return to_stack(skb, &f, &o);
	if (dst) {
		o.mask |= OBS_INGRESS;
		o.in_ifindex = dst->ifindex;
	}
	if (enforce(skb, &f, src, dst, &o, 0, &ctf) != TC_ACT_OK)
		return TC_ACT_SHOT;
	if (ctf & CT_F_VIA_STACK) {
		/* A translated connection's reply: the stack reverses it. */
		count_forwarded(skb, OBS_EGRESS);
		return TC_ACT_OK;
	}
	count_forwarded(skb, DELIVERED_HERE(o.mask));

	if (dst)
		return deliver_local(skb, ip, dst);

	remote = lookup_remote(daddr);
	if (!remote)
		return TC_ACT_OK;
	if (cfg_routing_mode == ROUTING_VXLAN && cfg_vxlan_ifindex != 0) {
		if (set_tunnel(skb, remote) < 0)
			return TC_ACT_SHOT;
		return bpf_redirect(cfg_vxlan_ifindex, 0);
	}
	return forward_remote(skb, ip);
}

/* to_local checks the ingress policy of local endpoint ep for a packet from
 * a pod on another node, then delivers it; a packet of a connection the
 * stack forwards (CT_F_VIA_STACK) goes to the stack, TC_ACT_OK.
 */
static __always_inline int to_local(struct __sk_buff *skb, struct iphdr *ip,
				    const struct endpoint_info *ep)
{
	struct obs o = {
		.in_ifindex = ep->ifindex,
		.mask = OBS_INGRESS,
		.peer = PEER_IPCACHE,
	};
	struct flow f = {};
	__u32 ctf;
	int reason;

	reason = parse_flow(skb, ip, &f);
	if (reason)
		return drop(skb, &f, &o, OBS_INGRESS, reason);
	if (enforce(skb, &f, NULL, ep, &o, 0, &ctf) != TC_ACT_OK)
		return TC_ACT_SHOT;
	if (ctf & CT_F_VIA_STACK)
		return TC_ACT_OK; /* counted where the stack delivers it */
	count_forwarded(skb, DELIVERED_HERE(o.mask));
	return deliver_local(skb, ip, ep);
}

/* Egress of the collect_md VXLAN device: what the kernel routes into the
 * overlay (e.g. node -> remote pod, or a pod's Service connection that the
 * stack translated to a remote backend). Without a tunnel key the device
 * cannot send it, so a destination outside every remote PodCIDR is dropped
 * here.
 */
SEC("tc")
int cnilab_to_overlay(struct __sk_buff *skb)
{
	struct remote_info *remote;
	struct iphdr *ip;

	ip = ipv4_hdr(skb);
	if (!ip)
		return TC_ACT_SHOT;
	remote = lookup_remote(ip->daddr);
	if (!remote)
		return TC_ACT_SHOT;
	if (stack_egress(skb, ip) != TC_ACT_OK)
		return TC_ACT_SHOT;
	if (set_tunnel(skb, remote) < 0)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

/* Ingress of the VXLAN device: decapsulated packets from remote nodes.
 * Pod-to-pod packets are delivered past the stack; the rest (from nodes,
 * replies of connections the stack translated) goes through it.
 */
SEC("tc")
int cnilab_from_overlay(struct __sk_buff *skb)
{
	struct endpoint_info *ep;
	struct iphdr *ip;
	int ret;

	ip = ipv4_hdr(skb);
	if (ip && from_remote_pod(ip->saddr)) {
		ep = lookup_endpoint(ip->daddr);
		if (ep) {
			ret = to_local(skb, ip, ep);
			if (ret != TC_ACT_OK)
				return ret;
		}
	}
	/* The inner destination MAC is the remote lxc's or the remote VXLAN
	 * device's, not ours: without this the stack drops it as OTHERHOST.
	 */
	if (skb->pkt_type == PACKET_OTHERHOST)
		bpf_skb_change_type(skb, PACKET_HOST);
	return TC_ACT_OK;
}

/* Ingress of the node's underlay device: native-mode traffic for our pods.
 * Pod-to-pod packets are delivered past the stack (when the sending node
 * forwards them past its own: cfg_redirect_neigh); the rest goes through
 * the stack, and to_container checks it.
 */
SEC("tc")
int cnilab_from_netdev(struct __sk_buff *skb)
{
	struct endpoint_info *ep;
	struct iphdr *ip;

	if (!cfg_redirect_neigh && cfg_routing_mode == ROUTING_NATIVE)
		return TC_ACT_OK;
	ip = ipv4_hdr(skb);
	if (!ip || !from_remote_pod(ip->saddr))
		return TC_ACT_OK;
	ep = lookup_endpoint(ip->daddr);
	if (ep)
		return to_local(skb, ip, ep);
	return TC_ACT_OK;
}

/* Egress of the node's underlay device: a pod's Service connection that
 * the stack translated to a backend on another node gets its policy check.
 */
SEC("tc")
int cnilab_to_netdev(struct __sk_buff *skb)
{
	struct iphdr *ip;

	if (!(skb->mark & MARK_SERVICE))
		return TC_ACT_OK;
	ip = ipv4_hdr(skb);
	if (!ip)
		return TC_ACT_OK;
	return stack_egress(skb, ip);
}

/* Egress of a host-side veth: what the kernel routes into a pod (the
 * node's own traffic, what the stack forwarded or translated, and packets
 * redirected with bpf_redirect, not _peer, which are tracked already and
 * counted here). A connection that starts here is tracked CT_F_VIA_STACK:
 * the pod's replies go back through the stack. The node's own traffic,
 * also after the stack masqueraded it (hairpin), is always allowed in.
 */
SEC("tc")
int cnilab_to_container(struct __sk_buff *skb)
{
	struct endpoint_info *ep, *src;
	struct obs o = { .mask = OBS_INGRESS };
	struct flow f = {};
	struct iphdr *ip;
	__u32 ctf, in_ifindex = skb->ingress_ifindex;
	int reason;

	ip = ipv4_hdr(skb);
	if (!ip)
		return TC_ACT_OK;
	ep = lookup_endpoint(ip->daddr);
	if (!ep)
		return TC_ACT_OK;
	o.in_ifindex = ep->ifindex;
	src = stack_source(skb, ip);
	if (src)
		o.mask |= OBS_EGRESS;
	/* Sent by this node's stack: no device received it. */
	o.peer = in_ifindex == 0 ? PEER_HOST : PEER_IPCACHE;
	/* The node's address from a pod's veth: the stack masqueraded it
	 * (hairpin). Only an ingress check tells the two apart (events give
	 * the host identity either way), so only then is it looked up.
	 */
	if (o.peer == PEER_IPCACHE && (ep->flags & EP_F_INGRESS_ENFORCED) &&
	    ipcache_identity(ip->saddr) == IDENTITY_HOST &&
	    bpf_map_lookup_elem(&cnilab_lxc, &in_ifindex))
		o.peer = PEER_HOST;
	reason = parse_flow(skb, ip, &f);
	if (reason)
		return drop(skb, &f, &o, OBS_INGRESS, reason);
	if (enforce(skb, &f, src, ep, &o, CT_F_VIA_STACK, &ctf) != TC_ACT_OK)
		return TC_ACT_SHOT;
	count_forwarded(skb, o.mask);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "Dual MIT/GPL";
