package flows

import (
	"net/netip"
	"time"
)

// Event is one flow event as the datapath delivers it (decoded from the BPF
// ring buffer by the loader): a drop, a new connection, or a connection
// starting to close. Fields hold the datapath's raw numbers; Enricher turns
// an Event into a Flow.
type Event struct {
	// Time the event happened (wall clock).
	Time time.Time
	// Src and Dst are the packet's addresses.
	Src, Dst netip.Addr
	// SrcPort and DstPort are the packet's ports (TCP, UDP, SCTP); zero
	// otherwise.
	SrcPort, DstPort uint16
	// Proto is the IP protocol: ProtoICMP, ProtoTCP, ProtoUDP, ProtoSCTP.
	Proto uint8
	// ICMPType and ICMPCode are the ICMP header's type and code when Proto
	// is ProtoICMP (an addition to the datapath's record: the loader fills
	// them when the ring-buffer record carries them).
	ICMPType, ICMPCode uint8
	// Verdict is VerdictForwarded (1) or VerdictDropped (2).
	Verdict uint8
	// DropReason is Cilium's drop reason number (e.g. 133), zero unless
	// dropped; DropReasonText its human text (e.g. "Policy denied").
	DropReason     uint8
	DropReasonText string
	// Direction is DirIngress (1) or DirEgress (2): where the verdict was
	// taken, relative to the local endpoint.
	Direction uint8
	// IsReply: the packet goes the reply way of a tracked connection.
	IsReply bool
	// NewConn: the event reports a new tracked connection. Closing: a
	// tracked connection saw its first FIN or RST.
	NewConn, Closing bool
	// ToStack: a pod's packet for a Service address, handed to the node's
	// stack untranslated (kube-proxy); Hubble's trace observation point
	// TO_STACK.
	ToStack bool
	// TCPFlags is the TCP header's flags byte (TCPFlagFIN ...).
	TCPFlags uint8
	// SrcIdentity and DstIdentity are the numeric security identities the
	// datapath resolved for both sides (IdentityHost ..., or computed).
	SrcIdentity, DstIdentity uint32
	// Ifindex is the interface where the event happened; Len the packet's
	// length in bytes.
	Ifindex uint32
	Len     uint32
}

// IP protocol numbers of Event.Proto.
const (
	ProtoICMP uint8 = 1
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoSCTP uint8 = 132
)

// Verdicts of Event.Verdict and Counter.Verdict (Hubble's Verdict numbers).
const (
	VerdictForwarded uint8 = 1
	VerdictDropped   uint8 = 2
)

// Directions of Event.Direction and Counter.Direction (Hubble's
// TrafficDirection numbers).
const (
	DirIngress uint8 = 1
	DirEgress  uint8 = 2
)

// TCP flag bits of Event.TCPFlags, as in the TCP header.
const (
	TCPFlagFIN uint8 = 0x01
	TCPFlagSYN uint8 = 0x02
	TCPFlagRST uint8 = 0x04
	TCPFlagPSH uint8 = 0x08
	TCPFlagACK uint8 = 0x10
	TCPFlagURG uint8 = 0x20
	TCPFlagECE uint8 = 0x40
	TCPFlagCWR uint8 = 0x80
)

// Reserved identities, numbered as datapath/policy numbers them (1, 2, 3;
// Cilium numbers remote-node 6). Computed identities start at 256.
const (
	IdentityHost       uint32 = 1
	IdentityWorld      uint32 = 2
	IdentityRemoteNode uint32 = 3
)

// reservedLabels labels the reserved identities as Hubble does.
var reservedLabels = map[uint32]string{
	IdentityHost:       "reserved:host",
	IdentityWorld:      "reserved:world",
	IdentityRemoteNode: "reserved:remote-node",
}
