/* Observability: flow events (cnilab_events, a BPF ring buffer) and per-CPU
 * packet/byte counters (cnilab_metrics), the one place where the datapath
 * reports what it did with a packet.
 *
 * Points of view. Every verdict is taken for a local endpoint (pod): its
 * EGRESS, for what it sends (cnilab_from_container, at its host-side veth),
 * or its INGRESS, for what is delivered to it (from_container when the
 * sender is a local pod too, from_netdev, from_overlay, to_container). A
 * hook makes one or two observations of a packet (struct obs): a same-node
 * pod-to-pod packet is the sender's egress and the receiver's ingress, like
 * the two observation points Hubble shows for it; a packet to or from
 * another node or the host is one of them.
 *
 * Events (never for other established packets, to keep the per-packet cost
 * low), one per observation:
 *   - a drop: DROPPED with the reason, for the observation whose check
 *     dropped it (one event, also for a same-node packet);
 *   - a new connection (conntrack entry created): FORWARDED, FLOW_F_NEW;
 *   - the first packet of a connection in the reply direction: FORWARDED,
 *     FLOW_F_REPLY (the entry's CT_F_REPLY_SEEN makes it the first);
 *   - the first FIN or RST of each direction: FORWARDED, FLOW_F_CLOSING
 *     (with FLOW_F_REPLY when it goes the reply way).
 * One packet gives one event per observation with all its flags. Packets
 * that are forwarded twice through the hooks (plain bpf_redirect passes
 * to_container after the hook that redirected it) find the conntrack flags
 * already set there and give no second event. Two CPUs racing on the same
 * entry may both report a first reply or closing (ct_touch is not atomic).
 * When the ring is full the event is counted in cnilab_events_lost: none is
 * lost silently. cfg_events = 0 turns events off (the verifier then removes
 * their code); the counters still count.
 *
 * ifindex is the host-side veth of the endpoint whose point of view the
 * event is: the sender's (the device from_container runs on, which the
 * packet came in from) for EGRESS, the receiver's (its endpoint entry) for
 * INGRESS.
 *
 * Counters: every packet a hook decides on is counted once per observation,
 * FORWARDED by direction or DROPPED by reason and direction (a dropped
 * same-node packet counts only as the drop). A packet delivered to a local
 * pod counts as INGRESS forwarded where it is delivered: in the hook that
 * redirects it with bpf_redirect_peer, or in to_container when plain
 * bpf_redirect (cfg_redirect_peer = 0) makes it pass there.
 */
#ifndef CNILAB_EVENTS_H
#define CNILAB_EVENTS_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "config.h"
#include "maps.h"
#include "flow.h"
#include "ipcache.h"

/* flow_event.verdict, as Hubble's Verdict. */
#define FLOW_VERDICT_FORWARDED 1
#define FLOW_VERDICT_DROPPED 2

/* flow_event.direction, as Hubble's TrafficDirection. */
#define FLOW_DIR_INGRESS 1  /* into a local endpoint */
#define FLOW_DIR_EGRESS 2   /* out of a local endpoint */

/* flow_event.flags */
#define FLOW_F_REPLY (1U << 0)    /* the packet goes the connection's reply way */
#define FLOW_F_NEW (1U << 1)      /* it created the connection's entry */
#define FLOW_F_CLOSING (1U << 2)  /* its direction's first FIN or RST */
#define FLOW_F_TO_STACK (1U << 3) /* passed to the node's stack untranslated (Service) */

/* obs.mask: the observations a hook makes of a packet. */
#define OBS_INGRESS (1U << 0)
#define OBS_EGRESS (1U << 1)

struct obs {
	__u32 in_ifindex;  /* OBS_INGRESS: the receiving endpoint's veth */
	__u8 mask;         /* OBS_* */
	__u8 peer;         /* PEER_*: who sent it, for the source identity */
};

/* What an event takes in the ring: the record and its 8-byte header. */
#define EVENT_RECORD_SIZE (sizeof(struct flow_event) + 8)

#define METRICS_INDEX(verdict, dir, reason) \
	((((__u32)(verdict) - 1) * 2 + (__u32)(dir) - 1) * METRICS_REASONS + (reason))

static __always_inline void metrics_add(struct __sk_buff *skb, __u8 verdict,
					__u8 dir, __u16 reason)
{
	__u32 idx = METRICS_INDEX(verdict, dir, reason);
	struct metrics_value *v;

	/* Per CPU, and tc programs do not nest on a CPU: no atomics. */
	v = bpf_map_lookup_elem(&cnilab_metrics, &idx);
	if (v) {
		v->packets++;
		v->bytes += skb->len;
	}
}

/* count_forwarded counts a packet that passed, once per observation. */
static __always_inline void count_forwarded(struct __sk_buff *skb, __u8 mask)
{
	if (mask & OBS_EGRESS)
		metrics_add(skb, FLOW_VERDICT_FORWARDED, FLOW_DIR_EGRESS, 0);
	if (mask & OBS_INGRESS)
		metrics_add(skb, FLOW_VERDICT_FORWARDED, FLOW_DIR_INGRESS, 0);
}

static __always_inline void event_emit(struct __sk_buff *skb,
				       const struct flow *f, __u8 verdict,
				       __u8 dir, __u8 flags, __u16 reason,
				       __u32 src_id, __u32 dst_id,
				       __u32 ifindex)
{
	struct flow_event *e;
	__u64 avail;

	e = bpf_ringbuf_reserve(&cnilab_events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *lost = bpf_map_lookup_elem(&cnilab_events_lost, &zero);

		if (lost)
			(*lost)++;
		return;
	}
	/* Every byte written: the ring's memory is not cleared. */
	e->ts_ns = bpf_ktime_get_ns();
	e->saddr = f->t.saddr;
	e->daddr = f->t.daddr;
	e->sport = f->t.sport;
	e->dport = f->t.dport;
	e->proto = f->t.proto;
	e->verdict = verdict;
	e->direction = dir;
	e->flags = flags;
	e->drop_reason = reason;
	e->tcp_flags = f->tcp_flags;
	e->icmp_type = f->icmp_type;
	e->src_identity = src_id;
	e->dst_identity = dst_id;
	e->ifindex = ifindex;
	e->len = skb->len;
	e->icmp_code = f->icmp_code;
	e->pad[0] = 0;
	e->pad[1] = 0;
	e->pad[2] = 0;
	/* Waking the reader on every event (the default when it keeps up)
	 * costs an irq_work, a self-IPI, per event, and the reader a syscall
	 * per event. Wake it only when the data waiting crosses
	 * cfg_events_wakeup; it reads the rest on its timer.
	 */
	avail = bpf_ringbuf_query(&cnilab_events, BPF_RB_AVAIL_DATA);
	if (avail >= cfg_events_wakeup &&
	    avail < cfg_events_wakeup + EVENT_RECORD_SIZE)
		bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	else
		bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/* flow_event reports a packet, once per observation in o->mask: egress
 * first (the sender's), then ingress (the receiver's).
 */
static __always_inline void flow_event(struct __sk_buff *skb,
				       const struct flow *f,
				       const struct obs *o, __u8 mask,
				       __u8 verdict, __u8 flags, __u16 reason)
{
	__u32 src_id, dst_id;

	if (!cfg_events)
		return;
	src_id = source_identity(f->t.saddr, o->peer);
	dst_id = ipcache_identity(f->t.daddr);
	if (mask & OBS_EGRESS)
		event_emit(skb, f, verdict, FLOW_DIR_EGRESS, flags, reason,
			   src_id, dst_id, skb->ingress_ifindex);
	if (mask & OBS_INGRESS)
		event_emit(skb, f, verdict, FLOW_DIR_INGRESS, flags, reason,
			   src_id, dst_id, o->in_ifindex);
}

/* drop counts and reports a packet dropped by the check of one
 * observation (OBS_INGRESS or OBS_EGRESS), and returns TC_ACT_SHOT.
 */
static __always_inline int drop(struct __sk_buff *skb, const struct flow *f,
				const struct obs *o, __u8 mask, __u16 reason)
{
	metrics_add(skb, FLOW_VERDICT_DROPPED,
		    mask == OBS_EGRESS ? FLOW_DIR_EGRESS : FLOW_DIR_INGRESS,
		    reason);
	flow_event(skb, f, o, mask, FLOW_VERDICT_DROPPED, 0, reason);
	return TC_ACT_SHOT;
}

#endif /* CNILAB_EVENTS_H */
