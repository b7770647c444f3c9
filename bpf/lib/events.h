/* Flow events: the one place where the datapath reports what it did with a
 * flow. Not implemented yet.
 */
#ifndef CNILAB_EVENTS_H
#define CNILAB_EVENTS_H

#include <linux/bpf.h>

#include "flow.h"

/* What happened to a flow. */
#define FLOW_EVENT_DROP 1   /* a packet was dropped; reason: DROP_* */
#define FLOW_EVENT_NEW 2    /* a connection was allowed and tracked */
#define FLOW_EVENT_CLOSE 3  /* a tracked TCP connection saw its first FIN or RST */

/* Where the verdict was taken. */
#define FLOW_DIR_INGRESS POLICY_INGRESS  /* into a local endpoint */
#define FLOW_DIR_EGRESS POLICY_EGRESS    /* out of a local endpoint */

/* ======================================================================
 * FLOW EVENTS HOOK. flow_event is called for every drop (before the
 * program returns TC_ACT_SHOT), for every new connection (after its
 * conntrack entry is created) and when a connection starts closing.
 * A later change emits the event here: reserve a record in a
 * BPF_MAP_TYPE_RINGBUF map (bpf_ringbuf_reserve, 5.8+, and drop the event
 * when it is full), fill it from f (tuple, TCP flags), skb (ifindex, len),
 * event, direction, reason (DROP_*, 0 otherwise) and bpf_ktime_get_ns(),
 * and bump per-CPU counters for the metrics. Keep it cheap: it runs on the
 * drop path of every denied packet.
 * ====================================================================== */
static __always_inline void flow_event(struct __sk_buff *skb,
				       const struct flow *f, __u8 event,
				       __u8 direction, __u16 reason)
{
	(void)skb;
	(void)f;
	(void)event;
	(void)direction;
	(void)reason;
}

#endif /* CNILAB_EVENTS_H */
