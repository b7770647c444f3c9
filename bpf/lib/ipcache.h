/* Identities of addresses: the ipcache (cnilab_ipcache), for policy and for
 * the identities flow events carry.
 */
#ifndef CNILAB_IPCACHE_H
#define CNILAB_IPCACHE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "maps.h"

/* Who is on the other side of an ingress check. */
#define PEER_IPCACHE 0  /* identity of the source address, from the ipcache */
#define PEER_HOST 1     /* this node's own stack: always allowed in */

/* ipcache_identity is the identity of addr: its longest ipcache prefix's,
 * IDENTITY_WORLD without one.
 */
static __always_inline __u32 ipcache_identity(__u32 addr)
{
	struct ipcache_key key = {
		.prefixlen = 32,
		.addr = addr,
	};
	struct ipcache_info *info;

	info = bpf_map_lookup_elem(&cnilab_ipcache, &key);
	return info ? info->identity : IDENTITY_WORLD;
}

/* source_identity is the identity of a packet's source as a check sees it:
 * the node itself for what its stack sent, else the ipcache's.
 */
static __always_inline __u32 source_identity(__u32 saddr, __u8 peer)
{
	return peer == PEER_HOST ? IDENTITY_HOST : ipcache_identity(saddr);
}

#endif /* CNILAB_IPCACHE_H */
