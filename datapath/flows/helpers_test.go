package flows

import (
	"context"
	"net/netip"
	"time"
)

var (
	t0     = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)
	ipA    = netip.MustParseAddr("10.244.1.10")
	ipB    = netip.MustParseAddr("10.244.2.20")
	ipHost = netip.MustParseAddr("192.168.0.1")
	ipNet  = netip.MustParseAddr("8.8.8.8")
)

// testEndpoints knows pods x/a (on node-1) and y/b (on node-2).
var testEndpoints = EndpointsFunc(func(ip netip.Addr) (Endpoint, bool) {
	switch ip {
	case ipA:
		return Endpoint{Namespace: "x", PodName: "a", Node: "node-1", Identity: 300,
			Labels: map[string]string{"pod": "a", "app": "web"}}, true
	case ipB:
		return Endpoint{Namespace: "y", PodName: "b", Node: "node-2", Identity: 301,
			Labels: map[string]string{"pod": "b"}}, true
	}
	return Endpoint{}, false
})

var testEnricher = &Enricher{NodeName: "node-1", Endpoints: testEndpoints}

// synDrop: x/a -> y/b TCP SYN to port 80, dropped by policy at ingress.
func synDrop() Event {
	return Event{
		Time: t0, Src: ipA, Dst: ipB, SrcPort: 43210, DstPort: 80, Proto: ProtoTCP,
		Verdict: VerdictDropped, DropReason: 133, DropReasonText: "Policy denied",
		Direction: DirIngress, TCPFlags: TCPFlagSYN,
		SrcIdentity: 300, DstIdentity: 301, Ifindex: 7, Len: 60,
	}
}

// udpReply: y/b:53 -> x/a UDP reply, forwarded at egress of y/b.
func udpReply() Event {
	return Event{
		Time: t0.Add(time.Second), Src: ipB, Dst: ipA, SrcPort: 53, DstPort: 40000,
		Proto: ProtoUDP, Verdict: VerdictForwarded, Direction: DirEgress, IsReply: true,
		SrcIdentity: 301, DstIdentity: 300, Ifindex: 9, Len: 120,
	}
}

func testContext() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
