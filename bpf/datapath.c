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
#include "lib/forward.h"

/* Ingress of a host-side veth: packets leaving a pod. */
SEC("tc")
int cnilab_from_container(struct __sk_buff *skb)
{
	struct endpoint_info *ep;
	struct remote_info *remote;
	struct iphdr *ip;
	__u32 daddr;

	ip = ipv4_hdr(skb);
	if (!ip)
		return TC_ACT_OK;
	daddr = ip->daddr;

	ep = lookup_endpoint(daddr);
	if (ep)
		return deliver_local(skb, ip, ep);

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
			return deliver_local(skb, ip, ep);
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
		return deliver_local(skb, ip, ep);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "Dual MIT/GPL";
