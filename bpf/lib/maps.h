/* Maps shared by every cnilab datapath program. They are pinned by name
 * (<pin path>/<map name>), so an agent restart finds them again with their
 * contents. Key and value layouts are ABI between the programs and the Go
 * loader (datapath/loader): change them only together with a map rename.
 */
#ifndef CNILAB_MAPS_H
#define CNILAB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define CNILAB_MAX_ENDPOINTS 65536
#define CNILAB_MAX_REMOTES 4096
#define CNILAB_MAX_IPCACHE 65536
#define CNILAB_MAX_POLICY 262144
#define CNILAB_MAX_CT 65536
#define CNILAB_MAX_FRAGS 8192

/* endpoint_info.flags */
#define EP_F_INGRESS_ENFORCED (1U << 0) /* some policy selects it for ingress */
#define EP_F_EGRESS_ENFORCED (1U << 1)  /* some policy selects it for egress */

/* A pod on this node, keyed by its IPv4 address (network byte order).
 * pod_mac and host_mac are adjacent: together they are the 12 bytes of an
 * Ethernet destination+source pair for a frame sent to the pod.
 */
struct endpoint_info {
	__u32 ifindex;     /* host-side veth (lxc...) in the node's netns */
	__u8 pod_mac[6];   /* MAC of the pod's eth0 */
	__u8 host_mac[6];  /* MAC of the host-side veth */
	__u32 flags;       /* EP_F_* */
};

/* A remote node's PodCIDR. */
struct remote_key {
	__u32 prefixlen;   /* LPM prefix length, 0..32 */
	__u32 addr;        /* network byte order */
};

struct remote_info {
	__u32 node_ip;     /* underlay IPv4 of the node, network byte order */
	__u32 flags;       /* reserved, 0 */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CNILAB_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct endpoint_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cnilab_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, CNILAB_MAX_REMOTES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct remote_key);
	__type(value, struct remote_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cnilab_remote SEC(".maps");

/* Reverse index of cnilab_endpoints, kept by the loader: host-side veth
 * ifindex -> pod IPv4 (network byte order). A packet entering a registered
 * veth must carry that pod's address as its source.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CNILAB_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cnilab_lxc SEC(".maps");

/* ---- Policy ---------------------------------------------------------- */

/* Reserved identities; the agent computes identities >= 256. */
#define IDENTITY_ANY 0          /* only as a policy wildcard */
#define IDENTITY_HOST 1         /* this node */
#define IDENTITY_WORLD 2        /* an address without ipcache entry */
#define IDENTITY_REMOTE_NODE 3  /* another node */

/* ipcache: IPv4 prefix -> security identity of the addresses in it. */
struct ipcache_key {
	__u32 prefixlen;   /* LPM prefix length, 0..32 */
	__u32 addr;        /* network byte order */
};

struct ipcache_info {
	__u32 identity;
	__u32 flags;       /* reserved, 0 */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, CNILAB_MAX_IPCACHE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cnilab_ipcache SEC(".maps");

#define POLICY_INGRESS 0
#define POLICY_EGRESS 1

/* An allow entry of a local endpoint; presence allows. The lookup order is
 * in policy.h (policy_allows).
 */
struct policy_key {
	__u32 endpoint;    /* local pod IPv4, network byte order */
	__u32 identity;    /* peer identity; IDENTITY_ANY: every peer */
	__u16 dport;       /* network byte order; 0: every port */
	__u8 proto;        /* IPPROTO_*; 0: every protocol */
	__u8 direction;    /* POLICY_INGRESS or POLICY_EGRESS */
};

struct policy_value {
	__u32 flags;       /* reserved, 0 */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CNILAB_MAX_POLICY);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct policy_key);
	__type(value, struct policy_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cnilab_policy SEC(".maps");

/* ---- Connection tracking --------------------------------------------- */

/* A connection, keyed by the tuple of its first packet (the original
 * direction). Ports are in network byte order; TCP, UDP and SCTP ports,
 * for ICMP echo the identifier as the requester's port (request:
 * sport = id, dport = 0; a reply's own tuple is the reverse), 0 otherwise.
 */
struct ct_tuple {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];       /* 0 */
};

/* ct_entry.flags */
#define CT_F_REPLY_SEEN (1U << 0) /* a packet in the reply direction passed */
#define CT_F_FIN_ORIG (1U << 1)   /* FIN from the originator */
#define CT_F_FIN_REPLY (1U << 2)  /* FIN from the responder */
#define CT_F_RST (1U << 3)        /* RST either way */
#define CT_F_CLOSING (CT_F_FIN_ORIG | CT_F_FIN_REPLY | CT_F_RST)
/* A FIN or RST went this way (for the one closing event per direction). */
#define CT_F_CLOSE_ORIG (1U << 4)
#define CT_F_CLOSE_REPLY (1U << 5)
/* The node's stack forwarded this connection (it may have translated it,
 * e.g. kube-proxy's DNAT): its packets go through the stack both ways on
 * this node, so that netfilter's conntrack sees all of it.
 */
#define CT_F_VIA_STACK (1U << 6)

struct ct_entry {
	__u64 created;     /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u64 last_seen;   /* last packet either way, refreshed at most once a second */
	__u32 flags;       /* CT_F_* */
	__u32 reserved;
};

/* Entries are only created by the programs and only deleted by the agent's
 * GC (idle timeouts) or by LRU eviction when the map is full.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CNILAB_MAX_CT);
	__type(key, struct ct_tuple);
	__type(value, struct ct_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cnilab_ct SEC(".maps");

/* IPv4 datagrams in fragments: the first fragment's ports, for the
 * fragments after it, which carry no L4 header.
 */
struct frag_key {
	__u32 saddr;
	__u32 daddr;
	__u16 id;          /* IP identification */
	__u8 proto;
	__u8 pad;          /* 0 */
};

struct frag_ports {
	__u16 sport;
	__u16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CNILAB_MAX_FRAGS);
	__type(key, struct frag_key);
	__type(value, struct frag_ports);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cnilab_frag SEC(".maps");

/* ---- Observability (lib/events.h) ----------------------------------- */

/* A flow event, one record of cnilab_events. Addresses and ports in
 * network byte order, as in ct_tuple; the layout is fixed (48 bytes, no
 * implicit padding).
 */
struct flow_event {
	__u64 ts_ns;         /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u32 saddr;
	__u32 daddr;
	__u16 sport;         /* ICMP echo: the identifier (see ct_tuple) */
	__u16 dport;
	__u8 proto;          /* IPPROTO_* */
	__u8 verdict;        /* FLOW_VERDICT_* */
	__u8 direction;      /* FLOW_DIR_*: the local endpoint's point of view */
	__u8 flags;          /* FLOW_F_* */
	__u16 drop_reason;   /* DROP_*, 0 when forwarded */
	__u8 tcp_flags;      /* the packet's TCP flags byte, 0 for other protocols */
	__u8 icmp_type;      /* ICMP: the header's type and code, else 0 */
	__u32 src_identity;  /* the source's identity (ipcache, or host) */
	__u32 dst_identity;
	__u32 ifindex;       /* host-side veth of the local endpoint (see events.h) */
	__u32 len;           /* skb->len: the frame, Ethernet header included */
	__u8 icmp_code;
	__u8 pad[3];         /* 0 */
};

#define CNILAB_EVENTS_SIZE (1U << 20)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CNILAB_EVENTS_SIZE);
	/* Not sent to the kernel (a ring has no value size): cilium/ebpf
	 * drops it, bpf2go generates the Go type from it.
	 */
	__type(value, struct flow_event);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cnilab_events SEC(".maps");

/* Events that found the ring full (index 0, per CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cnilab_events_lost SEC(".maps");

/* Packet and byte counters per (verdict, direction, drop reason), per CPU.
 * The index is METRICS_INDEX(verdict, direction, reason) (events.h):
 * ((verdict - 1) * 2 + direction - 1) * 256 + reason.
 */
struct metrics_value {
	__u64 packets;
	__u64 bytes;
};

#define METRICS_REASONS 256
#define CNILAB_MAX_METRICS (4 * METRICS_REASONS)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNILAB_MAX_METRICS);
	__type(key, __u32);
	__type(value, struct metrics_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cnilab_metrics SEC(".maps");

#endif /* CNILAB_MAPS_H */
