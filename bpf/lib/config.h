/* Load-time configuration. The loader sets these read-only globals before
 * the programs are loaded; the verifier then sees constants and prunes the
 * branches a node does not use.
 */
#ifndef CNILAB_CONFIG_H
#define CNILAB_CONFIG_H

#include <linux/types.h>

#define ROUTING_NATIVE 0
#define ROUTING_VXLAN 1

volatile const __u32 cfg_routing_mode = ROUTING_NATIVE;
/* ifindex of the collect_md VXLAN device (vxlan mode). */
volatile const __u32 cfg_vxlan_ifindex = 0;
/* VXLAN network identifier put in the tunnel key. */
volatile const __u32 cfg_vni = 2;
/* 1: deliver to pods with bpf_redirect_peer, 0: with bpf_redirect. */
volatile const __u32 cfg_redirect_peer = 1;
/* 1: forward to pods on other nodes with bpf_redirect_neigh to
 * cfg_underlay_ifindex (native routing), past the node's stack both ways;
 * 0: the stack forwards cross-node pod traffic both ways.
 */
volatile const __u32 cfg_redirect_neigh = 0;
/* ifindex of the node's underlay device (native routing). */
volatile const __u32 cfg_underlay_ifindex = 0;
/* The Service CIDR (network byte order); mask 0: none. A pod's packets to
 * it go to the node's stack, which may translate them (kube-proxy); their
 * policy is checked after translation (lib/stack.h).
 */
volatile const __u32 cfg_service_net = 0;
volatile const __u32 cfg_service_mask = 0;
/* 1: flow events into cnilab_events, 0: none (the counters count anyway). */
volatile const __u32 cfg_events = 1;
/* Wake the events reader when this many bytes wait in the ring (it also
 * polls on a timer): see event_emit.
 */
volatile const __u32 cfg_events_wakeup = 1U << 16;

#endif /* CNILAB_CONFIG_H */
