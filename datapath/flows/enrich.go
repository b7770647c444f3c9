package flows

import (
	"net/netip"
	"slices"
	"strings"
)

// Endpoint is what the agent knows about an address: a pod (from its
// informers) or a node.
type Endpoint struct {
	// ID is an optional local endpoint number (Hubble's Endpoint.ID).
	ID uint32
	// Namespace and PodName name the pod; empty for a non-pod address.
	Namespace, PodName string
	// Labels are the pod's labels, without any "k8s:" prefix.
	Labels map[string]string
	// Node is the node the pod runs on.
	Node string
	// Identity is the security identity the agent computed for the pod.
	Identity uint32
}

// Endpoints resolves addresses to endpoints. The agent implements it from
// its informers; it must be safe for concurrent use.
type Endpoints interface {
	Lookup(ip netip.Addr) (Endpoint, bool)
}

// EndpointsFunc adapts a function to Endpoints.
type EndpointsFunc func(ip netip.Addr) (Endpoint, bool)

// Lookup calls f.
func (f EndpointsFunc) Lookup(ip netip.Addr) (Endpoint, bool) { return f(ip) }

// Enricher turns datapath events into flows.
type Enricher struct {
	// NodeName is the local node, the flows' node_name.
	NodeName string
	// Endpoints resolves both sides; nil resolves nothing.
	Endpoints Endpoints
}

// Enrich builds the Flow of ev, resolving both sides through e.Endpoints.
func (e *Enricher) Enrich(ev Event) Flow {
	f := Flow{
		Time:        ev.Time.UTC(),
		Verdict:     verdictName(ev.Verdict),
		IP:          ipOf(ev.Src, ev.Dst),
		L4:          layer4Of(ev),
		Source:      e.endpoint(ev.Src, ev.SrcIdentity),
		Destination: e.endpoint(ev.Dst, ev.DstIdentity),
		Type:        "L3_L4",
		NodeName:    e.NodeName,
		EventType:   EventType{Type: EventTypeTrace},
		IsReply:     ev.IsReply,
		Summary:     summary(ev),
		NewConn:     ev.NewConn,
		Closing:     ev.Closing,
		Len:         ev.Len,
	}
	if ev.ToStack {
		f.TraceObservationPoint = "TO_STACK"
	}
	if ev.Verdict == VerdictDropped {
		f.DropReason = uint32(ev.DropReason)
		f.DropReasonDesc = dropReasonText(ev.DropReason, ev.DropReasonText)
		f.DropReasonName = DropReasonName(ev.DropReason)
		f.EventType = EventType{Type: EventTypeDrop, SubType: int32(ev.DropReason)}
	}
	if ev.Direction != 0 {
		f.TrafficDirection = directionName(ev.Direction)
	}
	if ev.Ifindex != 0 {
		f.Interface = &NetInterface{Index: ev.Ifindex}
	}
	return f
}

// endpoint describes ip. The datapath's identity wins over the agent's
// (it is the one the verdict used); the agent's fills in a zero one.
func (e *Enricher) endpoint(ip netip.Addr, identity uint32) FlowEndpoint {
	var ep Endpoint
	if e.Endpoints != nil && ip.IsValid() {
		ep, _ = e.Endpoints.Lookup(ip.Unmap())
	}
	if identity == 0 {
		identity = ep.Identity
	}
	out := FlowEndpoint{
		ID:        ep.ID,
		Identity:  identity,
		Namespace: ep.Namespace,
		PodName:   ep.PodName,
		NodeName:  ep.Node,
	}
	for k, v := range ep.Labels {
		out.Labels = append(out.Labels, "k8s:"+k+"="+v)
	}
	if ep.Namespace != "" {
		const nsLabel = "io.kubernetes.pod.namespace"
		if _, ok := ep.Labels[nsLabel]; !ok {
			out.Labels = append(out.Labels, "k8s:"+nsLabel+"="+ep.Namespace)
		}
	}
	if l, ok := reservedLabels[identity]; ok {
		out.Labels = append(out.Labels, l)
	}
	slices.Sort(out.Labels)
	return out
}

func ipOf(src, dst netip.Addr) IP {
	src, dst = src.Unmap(), dst.Unmap()
	v := "IPv4"
	if src.Is6() {
		v = "IPv6"
	}
	return IP{Source: addrString(src), Destination: addrString(dst), IPVersion: v}
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func layer4Of(ev Event) *Layer4 {
	ports := &Ports{SourcePort: ev.SrcPort, DestinationPort: ev.DstPort}
	switch ev.Proto {
	case ProtoTCP:
		t := &TCP{SourcePort: ev.SrcPort, DestinationPort: ev.DstPort}
		if ev.TCPFlags != 0 {
			t.Flags = tcpFlags(ev.TCPFlags)
		}
		return &Layer4{TCP: t}
	case ProtoUDP:
		return &Layer4{UDP: ports}
	case ProtoSCTP:
		return &Layer4{SCTP: ports}
	case ProtoICMP:
		return &Layer4{ICMPv4: &ICMPv4{Type: ev.ICMPType, Code: ev.ICMPCode}}
	}
	return nil
}

func tcpFlags(b uint8) *TCPFlags {
	return &TCPFlags{
		FIN: b&TCPFlagFIN != 0, SYN: b&TCPFlagSYN != 0,
		RST: b&TCPFlagRST != 0, PSH: b&TCPFlagPSH != 0,
		ACK: b&TCPFlagACK != 0, URG: b&TCPFlagURG != 0,
		ECE: b&TCPFlagECE != 0, CWR: b&TCPFlagCWR != 0,
	}
}

// tcpFlagOrder is the order of Hubble's "TCP Flags: " summary.
var tcpFlagOrder = []struct {
	bit  uint8
	name string
}{
	{TCPFlagSYN, "SYN"}, {TCPFlagACK, "ACK"}, {TCPFlagRST, "RST"},
	{TCPFlagFIN, "FIN"}, {TCPFlagPSH, "PSH"}, {TCPFlagURG, "URG"},
	{TCPFlagECE, "ECE"}, {TCPFlagCWR, "CWR"},
}

// summary is Hubble's Summary: "TCP Flags: SYN, ACK", "UDP", "SCTP",
// "ICMPv4 EchoRequest", or the IP version for another protocol.
func summary(ev Event) string {
	switch ev.Proto {
	case ProtoTCP:
		var names []string
		for _, f := range tcpFlagOrder {
			if ev.TCPFlags&f.bit != 0 {
				names = append(names, f.name)
			}
		}
		return "TCP Flags: " + strings.Join(names, ", ")
	case ProtoUDP:
		return "UDP"
	case ProtoSCTP:
		return "SCTP"
	case ProtoICMP:
		return "ICMPv4 " + icmpTypeCode(ev.ICMPType, ev.ICMPCode)
	}
	if ev.Src.Unmap().Is6() {
		return "IPv6"
	}
	return "IPv4"
}
