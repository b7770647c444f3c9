/* L4 flow parsing for conntrack and policy: the 5-tuple of a packet, its TCP
 * flags, the tuple an ICMP error is about, ports of IPv4 fragments.
 * L4 headers are read with bpf_skb_load_bytes (also from paged data); no
 * helper used here invalidates packet pointers.
 */
#ifndef CNILAB_FLOW_H
#define CNILAB_FLOW_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "maps.h"

/* Drop reasons, numbered as Cilium's (bpf/lib/common.h, Hubble's
 * drop_reason_desc) where one exists.
 */
#define DROP_INVALID_SIP 132     /* "Invalid source ip" */
#define DROP_POLICY 133          /* "Policy denied" */
#define DROP_CT_INVALID_HDR 135  /* "CT: Truncated or invalid header" */
#define DROP_FRAG_NOT_FOUND 175  /* "First logical datagram fragment not found" */

#define IP_FLAG_MF 0x2000
#define IP_FRAG_OFFSET 0x1fff

/* From linux/icmp.h, which drags in libc headers. */
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

struct icmp_echo_hdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u16 id;          /* echo only */
	__u16 sequence;
};

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

struct flow {
	struct ct_tuple t;      /* the packet's own tuple */
	struct ct_tuple inner;  /* ICMP error: the packet it reports */
	__u16 policy_dport;     /* port for policy lookups, 0: portless (ICMP, ...) */
	__u8 tcp_flags;
	__u8 icmp_error;        /* 1: ICMP error, inner is valid */
	__u8 icmp_type;         /* ICMP: type and code (for events) */
	__u8 icmp_code;
};

static __always_inline int proto_has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP ||
	       proto == IPPROTO_SCTP;
}

/* load_ports fills t->sport/dport (and *icmp_type, *icmp_code) from the L4
 * header at off. inner: the header is quoted in an ICMP error, where only
 * its first 8 bytes are sure to be present.
 */
static __always_inline int load_ports(struct __sk_buff *skb, __u32 off,
				      struct ct_tuple *t, __u8 *tcp_flags,
				      __u8 *icmp_type, __u8 *icmp_code,
				      const int inner)
{
	if (t->proto == IPPROTO_TCP && !inner) {
		__u8 tcp[14];

		if (bpf_skb_load_bytes(skb, off, tcp, sizeof(tcp)) < 0)
			return -1;
		__builtin_memcpy(&t->sport, tcp, 2);
		__builtin_memcpy(&t->dport, tcp + 2, 2);
		*tcp_flags = tcp[13];
		return 0;
	}
	if (proto_has_ports(t->proto)) {
		__u16 ports[2];

		if (bpf_skb_load_bytes(skb, off, ports, sizeof(ports)) < 0)
			return -1;
		t->sport = ports[0];
		t->dport = ports[1];
		return 0;
	}
	if (t->proto == IPPROTO_ICMP) {
		struct icmp_echo_hdr icmp;

		if (bpf_skb_load_bytes(skb, off, &icmp, sizeof(icmp)) < 0)
			return -1;
		*icmp_type = icmp.type;
		*icmp_code = icmp.code;
		/* Echo: the identifier is the requester's "port". */
		if (icmp.type == ICMP_ECHO)
			t->sport = icmp.id;
		else if (icmp.type == ICMP_ECHOREPLY)
			t->dport = icmp.id;
		return 0;
	}
	return 0; /* no ports */
}

static __always_inline int icmp_is_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETERPROB;
}

/* parse_inner reads the IPv4 header and ports quoted by the ICMP error
 * whose header is at off.
 */
static __always_inline int parse_inner(struct __sk_buff *skb, __u32 off,
				       struct flow *f)
{
	struct iphdr in;
	__u8 flags = 0, type = 0, code = 0;

	off += sizeof(struct icmp_echo_hdr);
	if (bpf_skb_load_bytes(skb, off, &in, sizeof(in)) < 0)
		return -1;
	if (in.version != 4 || in.ihl < 5)
		return -1;
	f->inner.saddr = in.saddr;
	f->inner.daddr = in.daddr;
	f->inner.proto = in.protocol;
	if (in.frag_off & bpf_htons(IP_FRAG_OFFSET))
		return 0; /* quotes a later fragment: no ports */
	return load_ports(skb, off + in.ihl * 4, &f->inner, &flags, &type,
			  &code, 1);
}

/* parse_flow fills f for an IPv4 packet. It returns 0, or a drop reason:
 * a packet whose L4 header cannot be read, or a later fragment of a
 * datagram whose first fragment was not seen, cannot be classified.
 */
static __always_inline int parse_flow(struct __sk_buff *skb,
				      const struct iphdr *ip, struct flow *f)
{
	__u16 frag = bpf_ntohs(ip->frag_off);
	__u32 off = ETH_HLEN + ip->ihl * 4;
	struct frag_key fk = {};
	struct frag_ports *fp;

	f->t.saddr = ip->saddr;
	f->t.daddr = ip->daddr;
	f->t.proto = ip->protocol;
	fk.saddr = ip->saddr;
	fk.daddr = ip->daddr;
	fk.id = ip->id;
	fk.proto = ip->protocol;

	if (frag & IP_FRAG_OFFSET) {
		/* A later fragment: no L4 header, the first one's ports. */
		if (proto_has_ports(f->t.proto) || f->t.proto == IPPROTO_ICMP) {
			fp = bpf_map_lookup_elem(&cnilab_frag, &fk);
			if (!fp)
				return DROP_FRAG_NOT_FOUND;
			f->t.sport = fp->sport;
			f->t.dport = fp->dport;
		}
	} else {
		if (load_ports(skb, off, &f->t, &f->tcp_flags, &f->icmp_type,
			       &f->icmp_code, 0) < 0)
			return DROP_CT_INVALID_HDR;
		if (f->t.proto == IPPROTO_ICMP && icmp_is_error(f->icmp_type) &&
		    parse_inner(skb, off, f) == 0)
			f->icmp_error = 1;
		if (frag & IP_FLAG_MF) {
			struct frag_ports ports = {
				.sport = f->t.sport,
				.dport = f->t.dport,
			};

			bpf_map_update_elem(&cnilab_frag, &fk, &ports, BPF_ANY);
		}
	}
	if (proto_has_ports(f->t.proto))
		f->policy_dport = f->t.dport;
	return 0;
}

#endif /* CNILAB_FLOW_H */
