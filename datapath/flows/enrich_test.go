package flows

import (
	"slices"
	"testing"
)

func TestEnrichBothSides(t *testing.T) {
	f := testEnricher.Enrich(synDrop())
	wantSrc := FlowEndpoint{Identity: 300, Namespace: "x", PodName: "a", NodeName: "node-1",
		Labels: []string{"k8s:app=web", "k8s:io.kubernetes.pod.namespace=x", "k8s:pod=a"}}
	if !equalEndpoint(f.Source, wantSrc) {
		t.Errorf("source = %+v, want %+v", f.Source, wantSrc)
	}
	wantDst := FlowEndpoint{Identity: 301, Namespace: "y", PodName: "b", NodeName: "node-2",
		Labels: []string{"k8s:io.kubernetes.pod.namespace=y", "k8s:pod=b"}}
	if !equalEndpoint(f.Destination, wantDst) {
		t.Errorf("destination = %+v, want %+v", f.Destination, wantDst)
	}
	if f.NodeName != "node-1" || f.IP.Source != "10.244.1.10" || f.IP.Destination != "10.244.2.20" {
		t.Errorf("node/IP = %q %+v", f.NodeName, f.IP)
	}
}

func TestEnrichIdentities(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ev       Event
		src, dst FlowEndpoint
	}{{
		name: "host to world",
		ev:   Event{Src: ipHost, Dst: ipNet, SrcIdentity: IdentityHost, DstIdentity: IdentityWorld},
		src:  FlowEndpoint{Identity: 1, Labels: []string{"reserved:host"}},
		dst:  FlowEndpoint{Identity: 2, Labels: []string{"reserved:world"}},
	}, {
		name: "remote node to unknown",
		ev:   Event{Src: ipHost, Dst: ipNet, SrcIdentity: IdentityRemoteNode, DstIdentity: 4242},
		src:  FlowEndpoint{Identity: 3, Labels: []string{"reserved:remote-node"}},
		dst:  FlowEndpoint{Identity: 4242},
	}, {
		name: "agent identity fills a zero one",
		ev:   Event{Src: ipA, Dst: ipNet},
		src: FlowEndpoint{Identity: 300, Namespace: "x", PodName: "a", NodeName: "node-1",
			Labels: []string{"k8s:app=web", "k8s:io.kubernetes.pod.namespace=x", "k8s:pod=a"}},
		dst: FlowEndpoint{},
	}} {
		f := testEnricher.Enrich(tc.ev)
		if !equalEndpoint(f.Source, tc.src) || !equalEndpoint(f.Destination, tc.dst) {
			t.Errorf("%s: got %+v -> %+v, want %+v -> %+v", tc.name, f.Source, f.Destination, tc.src, tc.dst)
		}
	}
	// No resolver at all: only identities and reserved labels.
	f := (&Enricher{}).Enrich(Event{Src: ipA, Dst: ipB, SrcIdentity: 300, DstIdentity: 2})
	if !equalEndpoint(f.Source, FlowEndpoint{Identity: 300}) || f.Destination.Labels[0] != "reserved:world" {
		t.Errorf("nil Endpoints: %+v -> %+v", f.Source, f.Destination)
	}
}

func TestSummary(t *testing.T) {
	for _, tc := range []struct {
		ev   Event
		want string
	}{
		{Event{Proto: ProtoTCP, TCPFlags: TCPFlagACK | TCPFlagSYN}, "TCP Flags: SYN, ACK"},
		{Event{Proto: ProtoTCP, TCPFlags: TCPFlagFIN | TCPFlagACK | TCPFlagPSH}, "TCP Flags: ACK, FIN, PSH"},
		{Event{Proto: ProtoUDP}, "UDP"},
		{Event{Proto: ProtoSCTP}, "SCTP"},
		{Event{Proto: ProtoICMP, ICMPType: 8}, "ICMPv4 EchoRequest"},
		{Event{Proto: ProtoICMP, ICMPType: 3, ICMPCode: 3}, "ICMPv4 DestinationUnreachable(Port)"},
		{Event{Proto: 47, Src: ipA}, "IPv4"},
	} {
		if got := summary(tc.ev); got != tc.want {
			t.Errorf("summary(%+v) = %q, want %q", tc.ev, got, tc.want)
		}
	}
}

func TestEnrichL4AndVerdict(t *testing.T) {
	f := testEnricher.Enrich(Event{Proto: ProtoICMP, ICMPType: 8, Verdict: VerdictForwarded, Direction: DirEgress})
	if f.L4 == nil || f.L4.ICMPv4 == nil || f.L4.ICMPv4.Type != 8 || f.Protocol() != "ICMPv4" {
		t.Errorf("ICMP l4 = %+v", f.L4)
	}
	if f.Verdict != "FORWARDED" || f.DropReasonDesc != "" || f.EventType.Type != EventTypeTrace || f.TrafficDirection != "EGRESS" {
		t.Errorf("forwarded flow = %+v", f)
	}
	// A drop without text gets Cilium's; an unknown reason its number.
	f = testEnricher.Enrich(Event{Verdict: VerdictDropped, DropReason: 175})
	if f.DropReasonDesc != "First logical datagram fragment not found" || f.DropReasonName != "FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND" {
		t.Errorf("drop 175 = %q %q", f.DropReasonDesc, f.DropReasonName)
	}
	f = testEnricher.Enrich(Event{Verdict: VerdictDropped, DropReason: 250})
	if f.DropReasonDesc != "DropReason(250)" || f.DropReasonName != "DROP_REASON_UNKNOWN" || f.EventType.SubType != 250 {
		t.Errorf("drop 250 = %q %q %+v", f.DropReasonDesc, f.DropReasonName, f.EventType)
	}
}

func equalEndpoint(a, b FlowEndpoint) bool {
	return a.ID == b.ID && a.Identity == b.Identity && a.Namespace == b.Namespace &&
		a.PodName == b.PodName && a.NodeName == b.NodeName && slices.Equal(a.Labels, b.Labels)
}
