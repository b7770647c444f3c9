/* Packet parsing with explicit bounds checks. */
#ifndef CNILAB_PARSE_H
#define CNILAB_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IPV4_MIN_OFF (ETH_HLEN + sizeof(struct iphdr))

/* ipv4_hdr returns the IPv4 header of an Ethernet frame, or NULL when the
 * frame is not IPv4 or too short. It pulls the headers into the linear area
 * when they are not there yet; that does not change the packet's contents.
 */
static __always_inline struct iphdr *ipv4_hdr(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;

	if (data + IPV4_MIN_OFF > data_end) {
		if (skb->len < IPV4_MIN_OFF ||
		    bpf_skb_pull_data(skb, IPV4_MIN_OFF) < 0)
			return NULL;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		eth = data;
		if (data + IPV4_MIN_OFF > data_end)
			return NULL;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	ip = data + ETH_HLEN;
	if (ip->version != 4 || ip->ihl < 5)
		return NULL;
	return ip;
}

#endif /* CNILAB_PARSE_H */
