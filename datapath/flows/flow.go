package flows

import "time"

// Flow is an enriched flow, shaped as Hubble's flow.Flow is in
// `hubble observe -o json` (proto field names, zero values omitted), with a
// few cnilab fields. Its JSON is one line of GET /v1/flows. A Flow is
// immutable once added to a Store: its pointers and slices are shared.
//
//	JSON field          Hubble field (flow.proto)     meaning
//	time                Flow.time                      RFC3339Nano, UTC
//	verdict             Flow.verdict                   "FORWARDED" or "DROPPED"
//	drop_reason         Flow.drop_reason               Cilium's number, e.g. 133 (drops only)
//	drop_reason_desc    Flow.drop_reason_desc          the reason's text, e.g. "Policy denied" (drops only);
//	                                                   Hubble puts its enum name here, cnilab the text
//	                                                   its users asked for, and the name in drop_reason_name
//	drop_reason_name    (cnilab)                       Hubble's enum name, e.g. "POLICY_DENIED" (drops only)
//	IP                  Flow.IP                        {source, destination, ipVersion "IPv4"/"IPv6"}
//	l4                  Flow.l4                        one of TCP, UDP, SCTP {source_port,
//	                                                   destination_port}; TCP also flags {SYN: true, ...};
//	                                                   ICMPv4 {type, code}; absent for other protocols
//	source, destination Flow.source/destination       see FlowEndpoint
//	Type                Flow.Type                      always "L3_L4"
//	node_name           Flow.node_name                 node that observed the flow
//	event_type          Flow.event_type                {type: 1 drop / 4 trace, sub_type: drop reason}
//	traffic_direction   Flow.traffic_direction         "INGRESS" or "EGRESS"
//	is_reply            Flow.is_reply                  always present
//	interface           Flow.interface                 {index}: where the event happened
//	Summary             Flow.Summary                   e.g. "TCP Flags: SYN", "UDP", "ICMPv4 EchoRequest"
//	new_conn            (cnilab)                       the event reports a new tracked connection
//	closing             (cnilab)                       a tracked connection saw its first FIN or RST
//	len                 (cnilab)                       packet length in bytes
//
// Hubble's `observe -o json` wraps each flow as {"flow": {...}}; cnilab
// writes the flow itself, one per line.
type Flow struct {
	Time             time.Time     `json:"time"`
	Verdict          string        `json:"verdict"`
	DropReason       uint32        `json:"drop_reason,omitempty"`
	DropReasonDesc   string        `json:"drop_reason_desc,omitempty"`
	DropReasonName   string        `json:"drop_reason_name,omitempty"`
	IP               IP            `json:"IP"`
	L4               *Layer4       `json:"l4,omitempty"`
	Source           FlowEndpoint  `json:"source"`
	Destination      FlowEndpoint  `json:"destination"`
	Type             string        `json:"Type"`
	NodeName         string        `json:"node_name,omitempty"`
	EventType        EventType     `json:"event_type"`
	TrafficDirection string        `json:"traffic_direction,omitempty"`
	IsReply          bool          `json:"is_reply"`
	Interface        *NetInterface `json:"interface,omitempty"`
	Summary          string        `json:"Summary"`
	NewConn          bool          `json:"new_conn,omitempty"`
	Closing          bool          `json:"closing,omitempty"`
	// TraceObservationPoint is Hubble's: TO_STACK for a pod's packet to a
	// Service address handed to the node's stack before translation.
	TraceObservationPoint string `json:"trace_observation_point,omitempty"`
	Len                   uint32 `json:"len,omitempty"`
}

// IP mirrors Hubble's flow.IP.
type IP struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	IPVersion   string `json:"ipVersion"`
}

// Layer4 mirrors Hubble's flow.Layer4: exactly one field is set.
type Layer4 struct {
	TCP    *TCP    `json:"TCP,omitempty"`
	UDP    *Ports  `json:"UDP,omitempty"`
	SCTP   *Ports  `json:"SCTP,omitempty"`
	ICMPv4 *ICMPv4 `json:"ICMPv4,omitempty"`
}

// TCP mirrors Hubble's flow.TCP.
type TCP struct {
	SourcePort      uint16    `json:"source_port"`
	DestinationPort uint16    `json:"destination_port"`
	Flags           *TCPFlags `json:"flags,omitempty"`
}

// Ports mirrors Hubble's flow.UDP and flow.SCTP.
type Ports struct {
	SourcePort      uint16 `json:"source_port"`
	DestinationPort uint16 `json:"destination_port"`
}

// TCPFlags mirrors Hubble's flow.TCPFlags: set flags only.
type TCPFlags struct {
	FIN bool `json:"FIN,omitempty"`
	SYN bool `json:"SYN,omitempty"`
	RST bool `json:"RST,omitempty"`
	PSH bool `json:"PSH,omitempty"`
	ACK bool `json:"ACK,omitempty"`
	URG bool `json:"URG,omitempty"`
	ECE bool `json:"ECE,omitempty"`
	CWR bool `json:"CWR,omitempty"`
}

// ICMPv4 mirrors Hubble's flow.ICMPv4 (both fields always present).
type ICMPv4 struct {
	Type uint8 `json:"type"`
	Code uint8 `json:"code"`
}

// FlowEndpoint mirrors Hubble's flow.Endpoint. Labels are "k8s:key=value"
// (sorted, plus "k8s:io.kubernetes.pod.namespace=NS" as Cilium adds) or a
// reserved identity's "reserved:world" and the like. NodeName (cnilab) is
// the node the pod runs on.
type FlowEndpoint struct {
	ID        uint32   `json:"ID,omitempty"`
	Identity  uint32   `json:"identity,omitempty"`
	Namespace string   `json:"namespace,omitempty"`
	Labels    []string `json:"labels,omitempty"`
	PodName   string   `json:"pod_name,omitempty"`
	NodeName  string   `json:"node_name,omitempty"`
}

// EventType mirrors Hubble's flow.CiliumEventType.
type EventType struct {
	Type    int32 `json:"type"`
	SubType int32 `json:"sub_type,omitempty"`
}

// NetInterface mirrors Hubble's flow.NetworkInterface.
type NetInterface struct {
	Index uint32 `json:"index"`
	Name  string `json:"name,omitempty"`
}

// Hubble's monitor message types of EventType.Type.
const (
	EventTypeDrop  int32 = 1
	EventTypeTrace int32 = 4
)

// Protocol names the flow's L4 protocol as Filter.Protocol does: "TCP",
// "UDP", "SCTP", "ICMPv4", or "" for another.
func (f *Flow) Protocol() string {
	switch l := f.L4; {
	case l == nil:
		return ""
	case l.TCP != nil:
		return "TCP"
	case l.UDP != nil:
		return "UDP"
	case l.SCTP != nil:
		return "SCTP"
	case l.ICMPv4 != nil:
		return "ICMPv4"
	}
	return ""
}

// Ports returns the flow's source and destination ports (zero without).
func (f *Flow) Ports() (src, dst uint16) {
	switch l := f.L4; {
	case l == nil:
	case l.TCP != nil:
		return l.TCP.SourcePort, l.TCP.DestinationPort
	case l.UDP != nil:
		return l.UDP.SourcePort, l.UDP.DestinationPort
	case l.SCTP != nil:
		return l.SCTP.SourcePort, l.SCTP.DestinationPort
	}
	return 0, 0
}
