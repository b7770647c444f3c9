// Package loader loads cnilab's eBPF datapath (forwarding and L3/L4 network
// policy) and attaches it to a node's interfaces.
//
// The programs come from bpf/datapath.c, compiled by bpf2go into the
// committed datapath_bpfel.{go,o} (see gen.go), so building needs no clang.
// Load loads them once per node with the node's configuration (routing mode,
// VXLAN device, VNI) and opens or creates the maps pinned under
// Options.PinPath; the Attach methods hook the programs into the pod veths,
// the VXLAN device and the underlay device, with TCX links where the kernel
// has them and clsact + cls_bpf otherwise.
//
// Everything outlives the agent: maps and TCX links are pinned, tc filters
// stay on their devices, and Close keeps all of it, so traffic keeps flowing
// while the agent restarts. The next Load reuses the pinned maps and its
// Attach calls replace the programs in place (link update, filter replace)
// without a gap. Unpin tears the pins down.
//
// Policy: the agent writes identities (UpsertIdentity: an LPM ipcache from
// prefixes to numeric identities, IdentityWorld when none matches), each
// local endpoint's allow entries (SetPolicy, PolicyKey) and its enforcement
// flags (EndpointInfo.PolicyIngress/PolicyEgress, SetEndpointPolicy). The
// programs check the first packet of every flow in the enforced directions
// and track it (conntrack): established packets, replies and related ICMP
// errors pass without lookup. Traffic the node's own stack sends to its
// pods is always allowed in (and tracked, so the pods' replies pass). The
// agent expires idle connections with GCConntrack. Dropped packets carry a
// DropReason (Cilium's numbers).
//
// Observability: the programs write flow events (drops, new connections,
// first replies, the first FIN or RST of each direction) to a pinned BPF
// ring buffer, read with ReadEvents as FlowEvent values, and count every
// packet they decide on in pinned per-CPU counters (Counters, by verdict,
// drop reason and direction; LostEvents for events that found the ring
// full). Directions are the local endpoint's point of view, as Hubble's.
// Options.NoEvents turns the events off, the counters stay.
//
// Interface indexes are those of the calling thread's network namespace: the
// agent runs inside its node's namespace.
package loader
