/* Connection tracking (cnilab_ct).
 *
 * One entry per connection, keyed by the tuple of its first packet. A packet
 * whose own tuple has an entry is ESTABLISHED, one whose reversed tuple has
 * an entry is a REPLY, an ICMP error about a tracked connection is RELATED;
 * all three pass without a policy lookup. Anything else is NEW: the caller
 * checks policy and, when allowed, creates the entry (ct_create).
 *
 * The programs never delete entries: the agent's GC (datapath/loader,
 * GCConntrack) removes those idle for longer than their timeout, which
 * depends on the protocol and on the flags kept here (reply seen, closing).
 * A TCP SYN (without ACK) on a closing entry starts a new connection on
 * the same ports: it is NEW again, and checked.
 */
#ifndef CNILAB_CONNTRACK_H
#define CNILAB_CONNTRACK_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "maps.h"
#include "flow.h"
#include "events.h"

#define CT_NEW 0
#define CT_ESTABLISHED 1
#define CT_REPLY 2
#define CT_RELATED 3

/* last_seen is written at most this often (nanoseconds): a busy connection
 * does not dirty its entry on every packet. The GC's granularity.
 */
#define CT_REFRESH_NS 1000000000ULL

static __always_inline void ct_reverse(const struct ct_tuple *t,
				       struct ct_tuple *r)
{
	r->saddr = t->daddr;
	r->daddr = t->saddr;
	r->sport = t->dport;
	r->dport = t->sport;
	r->proto = t->proto;
}

static __always_inline __u32 ct_tcp_flags(const struct flow *f, int reply)
{
	__u32 flags = 0;

	if (f->tcp_flags & TCP_FLAG_FIN)
		flags |= reply ? CT_F_FIN_REPLY : CT_F_FIN_ORIG;
	if (f->tcp_flags & TCP_FLAG_RST)
		flags |= CT_F_RST;
	if (flags)
		flags |= reply ? CT_F_CLOSE_REPLY : CT_F_CLOSE_ORIG;
	return flags;
}

/* A TCP SYN without ACK: the first packet of a connection. */
static __always_inline int tcp_syn_only(const struct flow *f)
{
	return f->t.proto == IPPROTO_TCP &&
	       (f->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
}

/* ct_touch records a packet of a tracked connection, and reports it when
 * it is the first one the reply way or its direction's first FIN or RST.
 * Concurrent updates from several CPUs may lose a flag or a refresh; the
 * next packet repeats it (5.10 has no atomic OR).
 */
static __always_inline void ct_touch(struct __sk_buff *skb,
				     const struct flow *f,
				     struct ct_entry *e, int reply,
				     const struct obs *o)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 old = e->flags;
	__u32 flags = old | ct_tcp_flags(f, reply);
	__u32 added;
	__u8 ev = 0;

	if (reply)
		flags |= CT_F_REPLY_SEEN;
	if (flags != old) {
		e->flags = flags;
		e->last_seen = now;
		added = flags & ~old;
		if (added & CT_F_REPLY_SEEN)
			ev |= FLOW_F_REPLY;
		if (added & (CT_F_CLOSE_ORIG | CT_F_CLOSE_REPLY))
			ev |= FLOW_F_CLOSING;
		if (ev)
			flow_event(skb, f, o, o->mask, FLOW_VERDICT_FORWARDED,
				   ev | (reply ? FLOW_F_REPLY : 0), 0);
		return;
	}
	if (now - e->last_seen >= CT_REFRESH_NS)
		e->last_seen = now;
}

/* ct_lookup classifies a packet; o is what the caller observes (events).
 * *flags gets the flags of the connection's entry (0 for a new one).
 */
static __always_inline int ct_lookup(struct __sk_buff *skb,
				     const struct flow *f,
				     const struct obs *o, __u32 *flags)
{
	struct ct_tuple rev = {};
	struct ct_entry *e;

	*flags = 0;
	if (f->icmp_error) {
		e = bpf_map_lookup_elem(&cnilab_ct, &f->inner);
		if (!e) {
			ct_reverse(&f->inner, &rev);
			e = bpf_map_lookup_elem(&cnilab_ct, &rev);
		}
		if (!e)
			return CT_NEW;
		*flags = e->flags;
		return CT_RELATED;
	}

	e = bpf_map_lookup_elem(&cnilab_ct, &f->t);
	if (e) {
		if (tcp_syn_only(f) && (e->flags & CT_F_CLOSING))
			return CT_NEW; /* reopened */
		ct_touch(skb, f, e, 0, o);
		*flags = e->flags;
		return CT_ESTABLISHED;
	}
	ct_reverse(&f->t, &rev);
	e = bpf_map_lookup_elem(&cnilab_ct, &rev);
	if (e) {
		if (tcp_syn_only(f) && (e->flags & CT_F_CLOSING))
			return CT_NEW; /* a new connection the other way */
		ct_touch(skb, f, e, 1, o);
		*flags = e->flags;
		return CT_REPLY;
	}
	return CT_NEW;
}

/* ct_create tracks a new connection (replacing a closing entry with the
 * same tuple) with extra flags (CT_F_VIA_STACK). If the map cannot take it,
 * the packet still passes: its replies are then checked as new flows.
 */
static __always_inline void ct_create(const struct flow *f, __u32 extra)
{
	__u64 now = bpf_ktime_get_ns();
	struct ct_entry e = {
		.created = now,
		.last_seen = now,
		.flags = ct_tcp_flags(f, 0) | extra,
	};

	bpf_map_update_elem(&cnilab_ct, &f->t, &e, BPF_ANY);
}

#endif /* CNILAB_CONNTRACK_H */
