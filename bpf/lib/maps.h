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

/* A pod on this node, keyed by its IPv4 address (network byte order).
 * pod_mac and host_mac are adjacent: together they are the 12 bytes of an
 * Ethernet destination+source pair for a frame sent to the pod.
 */
struct endpoint_info {
	__u32 ifindex;     /* host-side veth (lxc...) in the node's netns */
	__u8 pod_mac[6];   /* MAC of the pod's eth0 */
	__u8 host_mac[6];  /* MAC of the host-side veth */
	__u32 flags;       /* reserved, 0 */
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

#endif /* CNILAB_MAPS_H */
