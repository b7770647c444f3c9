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
 *   anything else   -> TC_ACT_OK, the kernel routes it (native mode reaches
 *                      remote PodCIDRs by kernel routes via the node IPs).
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

/* In which hook a packet delivered to a local pod counts as INGRESS
 * forwarded (events.h): where bpf_redirect_peer delivers it, or in
 * to_container, which plain bpf_redirect passes.
 */
#define DELIVERED_HERE(mask) (cfg_redirect_peer ? (mask) : (mask) & ~OBS_INGRESS)

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
	__u32 daddr;
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
	if (dst) {
		o.mask |= OBS_INGRESS;
		o.in_ifindex = dst->ifindex;
	}
	if (enforce(skb, &f, src, dst, &o) != TC_ACT_OK)
		return TC_ACT_SHOT;
	count_forwarded(skb, DELIVERED_HERE(o.mask));

	if (dst)
		return deliver_local(skb, ip, dst);

	if (cfg_routing_mode == ROUTING_VXLAN && cfg_vxlan_ifindex != 0) {
		remote = lookup_remote(daddr);
		if (remote) {
			if (set_tunnel(skb, remote) < 0)
				return TC_ACT_SHOT;
			return bpf_redirect(cfg_vxlan_ifindex, 0);
		}
	}
	return TC_ACT_OK;
}

/* to_local checks the ingress policy of local endpoint ep for a packet from
 * another node, then delivers it.
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
	int reason;

	reason = parse_flow(skb, ip, &f);
	if (reason)
		return drop(skb, &f, &o, OBS_INGRESS, reason);
	if (enforce(skb, &f, NULL, ep, &o) != TC_ACT_OK)
		return TC_ACT_SHOT;
	count_forwarded(skb, DELIVERED_HERE(o.mask));
	return deliver_local(skb, ip, ep);
}

/* Egress of the collect_md VXLAN device: what the kernel routes into the
 * overlay (e.g. node -> remote pod). Without a tunnel key the device cannot
 * send it, so a destination outside every remote PodCIDR is dropped here.
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
	if (set_tunnel(skb, remote) < 0)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

/* Ingress of the VXLAN device: decapsulated packets from remote nodes. */
SEC("tc")
int cnilab_from_overlay(struct __sk_buff *skb)
{
	struct endpoint_info *ep;
	struct iphdr *ip;

	ip = ipv4_hdr(skb);
	if (ip) {
		ep = lookup_endpoint(ip->daddr);
		if (ep)
			return to_local(skb, ip, ep);
	}
	/* The inner destination MAC is the remote lxc's or the remote VXLAN
	 * device's, not ours: without this the stack drops it as OTHERHOST.
	 */
	if (skb->pkt_type == PACKET_OTHERHOST)
		bpf_skb_change_type(skb, PACKET_HOST);
	return TC_ACT_OK;
}

/* Ingress of the node's underlay device: native-mode traffic for our pods. */
SEC("tc")
int cnilab_from_netdev(struct __sk_buff *skb)
{
	struct endpoint_info *ep;
	struct iphdr *ip;

	ip = ipv4_hdr(skb);
	if (!ip)
		return TC_ACT_OK;
	ep = lookup_endpoint(ip->daddr);
	if (ep)
		return to_local(skb, ip, ep);
	return TC_ACT_OK;
}

/* Egress of a host-side veth: what the kernel routes into a pod (the
 * node's own traffic, and whatever reached the node without being
 * redirected by the programs above). Packets redirected with bpf_redirect
 * (not _peer) pass here too, already tracked: they are counted here.
 */
SEC("tc")
int cnilab_to_container(struct __sk_buff *skb)
{
	struct endpoint_info *ep;
	struct obs o = { .mask = OBS_INGRESS };
	struct flow f = {};
	struct iphdr *ip;
	int reason;

	ip = ipv4_hdr(skb);
	if (!ip)
		return TC_ACT_OK;
	ep = lookup_endpoint(ip->daddr);
	if (!ep)
		return TC_ACT_OK;
	o.in_ifindex = ep->ifindex;
	/* Sent by this node's stack: no device received it. */
	o.peer = skb->ingress_ifindex == 0 ? PEER_HOST : PEER_IPCACHE;
	reason = parse_flow(skb, ip, &f);
	if (reason)
		return drop(skb, &f, &o, OBS_INGRESS, reason);
	if (enforce(skb, &f, NULL, ep, &o) != TC_ACT_OK)
		return TC_ACT_SHOT;
	count_forwarded(skb, o.mask);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "Dual MIT/GPL";
