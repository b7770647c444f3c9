/* Forwarding actions: local delivery to a pod, VXLAN encapsulation. */
#ifndef CNILAB_FORWARD_H
#define CNILAB_FORWARD_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "config.h"
#include "maps.h"

#define IP_TTL_OFF (ETH_HLEN + offsetof(struct iphdr, ttl))
#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))

/* The tunnel key without the local (source) address fields, which 5.10 does
 * not know; the kernel picks the source address by route lookup.
 */
#define TUNNEL_KEY_SIZE offsetof(struct bpf_tunnel_key, local_ipv4)

static __always_inline struct endpoint_info *lookup_endpoint(__u32 daddr)
{
	return bpf_map_lookup_elem(&cnilab_endpoints, &daddr);
}

static __always_inline struct remote_info *lookup_remote(__u32 daddr)
{
	struct remote_key key = {
		.prefixlen = 32,
		.addr = daddr,
	};

	return bpf_map_lookup_elem(&cnilab_remote, &key);
}

/* ttl_decrement does a router's TTL step on an IPv4 packet: 0 when done
 * (the packet pointers are then invalid), TTL_EXPIRED when the TTL would
 * expire (the caller leaves the packet to the stack, which answers with ICMP
 * time exceeded), negative on error.
 */
#define TTL_EXPIRED 1

static __always_inline int ttl_decrement(struct __sk_buff *skb,
					 struct iphdr *ip)
{
	__u16 old_word, new_word;
	__u8 ttl = ip->ttl;

	if (ttl <= 1)
		return TTL_EXPIRED;
	/* TTL and protocol share the 16-bit word the checksum covers. */
	old_word = *(__u16 *)&ip->ttl;
	ttl--;
	__builtin_memcpy(&new_word, &old_word, sizeof(new_word));
	*(__u8 *)&new_word = ttl;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_word, new_word, 2) < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, IP_TTL_OFF, &ttl, 1, 0) < 0)
		return -1;
	return 0;
}

/* deliver_local routes an IPv4 packet to a pod on this node, as a router
 * would: TTL decremented, Ethernet addresses rewritten to host veth -> pod,
 * then redirected to the pod's veth (into the pod's namespace directly with
 * redirect_peer). A packet whose TTL would expire is left to the stack.
 */
static __always_inline int deliver_local(struct __sk_buff *skb,
					 struct iphdr *ip,
					 const struct endpoint_info *ep)
{
	__u8 macs[2 * ETH_ALEN];
	__u32 ifindex = ep->ifindex;
	int ret;

	__builtin_memcpy(macs, ep->pod_mac, ETH_ALEN);
	__builtin_memcpy(macs + ETH_ALEN, ep->host_mac, ETH_ALEN);
	/* From here on the packet pointers are invalid. */
	ret = ttl_decrement(skb, ip);
	if (ret == TTL_EXPIRED)
		return TC_ACT_OK;
	if (ret < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
		return TC_ACT_SHOT;

	if (cfg_redirect_peer) {
		/* The peer redirect skips eth_type_trans in the pod: the
		 * packet type computed on this device stays, so make it ours.
		 */
		bpf_skb_change_type(skb, PACKET_HOST);
		return bpf_redirect_peer(ifindex, 0);
	}
	return bpf_redirect(ifindex, 0);
}

/* forward_remote sends a packet for a pod on another node (native routing)
 * out of the underlay device with bpf_redirect_neigh, which looks up the
 * route (via the node's address) and its neighbour: past the node's stack,
 * as the receiving node delivers it, so that neither node's netfilter sees
 * one half of the connection only. Without the helper the stack forwards it.
 */
static __always_inline int forward_remote(struct __sk_buff *skb,
					  struct iphdr *ip)
{
	int ret;

	if (!cfg_redirect_neigh || cfg_underlay_ifindex == 0)
		return TC_ACT_OK;
	ret = ttl_decrement(skb, ip);
	if (ret == TTL_EXPIRED)
		return TC_ACT_OK;
	if (ret < 0)
		return TC_ACT_SHOT;
	return bpf_redirect_neigh(cfg_underlay_ifindex, NULL, 0, 0);
}

/* set_tunnel sets the VXLAN tunnel key for a remote node. */
static __always_inline int set_tunnel(struct __sk_buff *skb,
				      const struct remote_info *remote)
{
	struct bpf_tunnel_key key = {};

	key.tunnel_id = cfg_vni;
	key.remote_ipv4 = bpf_ntohl(remote->node_ip);
	key.tunnel_ttl = 64;
	return bpf_skb_set_tunnel_key(skb, &key, TUNNEL_KEY_SIZE,
				      BPF_F_ZERO_CSUM_TX);
}

#endif /* CNILAB_FORWARD_H */
