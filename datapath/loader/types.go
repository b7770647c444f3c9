package loader

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// RoutingMode is how traffic reaches pods on other nodes.
type RoutingMode int

const (
	// Native leaves cross-node traffic to kernel routes (remote PodCIDR via
	// the remote node's underlay IP on a shared L2).
	Native RoutingMode = 0
	// VXLAN encapsulates cross-node traffic on a collect_md VXLAN device,
	// with the tunnel endpoint taken from the remote map.
	VXLAN RoutingMode = 1
)

func (m RoutingMode) String() string {
	switch m {
	case Native:
		return "native"
	case VXLAN:
		return "vxlan"
	}
	return fmt.Sprintf("RoutingMode(%d)", int(m))
}

// AttachMode is how programs are hooked into interfaces.
type AttachMode string

const (
	// AttachTCX uses TCX links (Linux 6.6+), pinned so they outlive the agent.
	AttachTCX AttachMode = "tcx"
	// AttachTC uses a clsact qdisc and a cls_bpf direct-action filter.
	AttachTC AttachMode = "tc"
)

// AttachEnv names the environment variable that, when set to "tc" or "tcx",
// overrides Options.Attach and the probe.
const AttachEnv = "CNILAB_ATTACH"

// RedirectNeighEnv names the environment variable that, set to "0", makes
// native routing leave cross-node pod traffic to the stack (both ways) even
// where bpf_redirect_neigh exists: for comparisons, like CNILAB_ATTACH=tc.
const RedirectNeighEnv = "CNILAB_REDIRECT_NEIGH"

// ErrNotSupported is wrapped by errors about features the kernel lacks.
var ErrNotSupported = errors.New("not supported by this kernel")

// ErrClosed is wrapped by errors of writes to a Datapath after its Close.
var ErrClosed = errors.New("datapath closed")

// DefaultVNI is the VXLAN network identifier used when Options.VNI is 0.
const DefaultVNI = 2

// EndpointInfo is a local pod as the datapath sees it.
type EndpointInfo struct {
	// Ifindex of the host-side veth (lxc…) in the node's namespace.
	Ifindex int
	// PodMAC is the MAC of the pod's eth0, HostMAC the host-side veth's.
	PodMAC, HostMAC net.HardwareAddr
	// PolicyIngress is set when some policy selects the pod for ingress:
	// a new connection to it then needs an allow entry (see PolicyKey),
	// except from this node, which is always allowed in. When false,
	// everything is allowed in.
	PolicyIngress bool
	// PolicyEgress is the same for connections the pod opens.
	PolicyEgress bool
}

// Reserved identities. Computed identities start at MinIdentity.
const (
	// IdentityAny is a wildcard in a PolicyKey; it is never an address's.
	IdentityAny uint32 = 0
	// IdentityHost is this node's addresses.
	IdentityHost uint32 = 1
	// IdentityWorld is the identity of an address without ipcache entry.
	IdentityWorld uint32 = 2
	// IdentityRemoteNode is other nodes' addresses.
	IdentityRemoteNode uint32 = 3
	// MinIdentity is the first identity the agent computes.
	MinIdentity uint32 = 256
)

// IP protocol numbers for PolicyKey.Proto.
const (
	ProtoAny  uint8 = 0
	ProtoICMP uint8 = 1
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoSCTP uint8 = 132
)

// ProtoName names an IP protocol as NetworkPolicy and conntrack listings
// write it: tcp, udp, sctp, icmp, else the number.
func ProtoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoSCTP:
		return "sctp"
	case ProtoICMP:
		return "icmp"
	}
	return strconv.Itoa(int(p))
}

// PolicyKey is one allow entry of a local endpoint. For a new connection in
// an enforced direction, with the peer's identity id (from the ipcache,
// IdentityWorld without entry), the programs look up, in this order, and
// allow on the first hit:
//
//	(id, port, proto), (id, 0, proto), (id, 0, 0),
//	(0, port, proto),  (0, 0, proto),  (0, 0, 0)
//
// Packets without ports (ICMP, ...) are looked up with port 0: only entries
// with Port 0 match them, and Proto 0 or their protocol.
type PolicyKey struct {
	// Endpoint is the local pod's IPv4 address.
	Endpoint netip.Addr
	// Identity is the peer's identity; IdentityAny matches every peer.
	Identity uint32
	// Port is the destination port (host byte order); 0 matches every
	// port. It needs Proto TCP, UDP or SCTP.
	Port uint16
	// Proto is the IP protocol; ProtoAny matches every protocol.
	Proto uint8
	// Egress: the entry allows connections the endpoint opens; otherwise
	// connections to it.
	Egress bool
}

func (k PolicyKey) String() string {
	dir := "ingress"
	if k.Egress {
		dir = "egress"
	}
	return fmt.Sprintf("%v %s id=%d port=%d proto=%d", k.Endpoint, dir, k.Identity, k.Port, k.Proto)
}

// ConntrackTimeouts are the idle times after which GCConntrack deletes a
// connection; a zero field takes its value from DefaultConntrackTimeouts.
type ConntrackTimeouts struct {
	// TCP is for established TCP connections (a reply was seen).
	TCP time.Duration
	// TCPSyn is for TCP connections that have seen no reply yet.
	TCPSyn time.Duration
	// TCPClosing is for TCP connections after the first FIN or RST.
	TCPClosing time.Duration
	// UDP is for UDP (and SCTP) flows.
	UDP time.Duration
	// Other is for ICMP and every other protocol.
	Other time.Duration
}

// DefaultConntrackTimeouts are the timeouts used where Options leave them
// zero.
var DefaultConntrackTimeouts = ConntrackTimeouts{
	TCP:        30 * time.Minute,
	TCPSyn:     time.Minute,
	TCPClosing: 10 * time.Second,
	UDP:        time.Minute,
	Other:      time.Minute,
}

func (t ConntrackTimeouts) withDefaults() ConntrackTimeouts {
	def := DefaultConntrackTimeouts
	for _, f := range []struct{ v, d *time.Duration }{
		{&t.TCP, &def.TCP}, {&t.TCPSyn, &def.TCPSyn}, {&t.TCPClosing, &def.TCPClosing},
		{&t.UDP, &def.UDP}, {&t.Other, &def.Other},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	return t
}

// ConntrackEntry is a tracked connection, in its original direction (as
// its first packet went). For ICMP echo, Src's port is the echo identifier
// and Dst's is 0; other ICMP has 0 ports.
type ConntrackEntry struct {
	Proto    uint8
	Src, Dst netip.AddrPort
	// Created and LastSeen are converted from the kernel's monotonic clock;
	// LastSeen is refreshed at most once a second.
	Created, LastSeen time.Time
	// ReplySeen: a packet went the other way.
	ReplySeen bool
	// FIN from the originator, FIN from the responder, RST either way.
	FinOrig, FinReply, RST bool
}

// Closing tells whether the connection saw a FIN or a RST.
func (e ConntrackEntry) Closing() bool { return e.FinOrig || e.FinReply || e.RST }

// DropReason is why the datapath dropped a packet; the numbers are
// Cilium's (and Hubble's drop_reason_desc).
type DropReason uint16

const (
	DropInvalidSourceIP DropReason = 132
	DropPolicy          DropReason = 133
	DropCTInvalidHeader DropReason = 135
	DropFragNotFound    DropReason = 175
)

func (r DropReason) String() string {
	switch r {
	case DropInvalidSourceIP:
		return "Invalid source ip"
	case DropPolicy:
		return "Policy denied"
	case DropCTInvalidHeader:
		return "CT: Truncated or invalid header"
	case DropFragNotFound:
		return "First logical datagram fragment not found"
	}
	return fmt.Sprintf("DropReason(%d)", uint16(r))
}
