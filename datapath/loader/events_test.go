package loader

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// drainEvents reads every event in d's ring buffer now.
func drainEvents(t *testing.T, d *Datapath) []FlowEvent {
	t.Helper()
	rd, err := ringbuf.NewReader(d.objs.CnilabEvents)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rd.SetDeadline(time.Now())
	var out []FlowEvent
	for {
		rec, err := rd.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		ev, err := decodeFlowEvent(rec.RawSample, d.boot)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
}

// evWant is the part of a FlowEvent a test checks (Time and Len apart).
type evWant struct {
	Verdict    Verdict
	Reason     DropReason
	Dir        Direction
	Src, Dst   netip.Addr
	Sport      uint16
	Dport      uint16
	Proto      uint8
	Flags      string // "new", "reply", "closing", space separated
	TCPFlags   uint8
	SrcID      uint32
	DstID      uint32
	Ifindex    uint32
	ICMPType   uint8
	ICMPCode   uint8
	packetSize int
}

func evFlags(e FlowEvent) string {
	var f []string
	if e.New {
		f = append(f, "new")
	}
	if e.IsReply {
		f = append(f, "reply")
	}
	if e.Closing {
		f = append(f, "closing")
	}
	return strings.Join(f, " ")
}

func (w evWant) String() string {
	return fmt.Sprintf("%s %s %v:%d->%v:%d proto=%d [%s] reason=%d tcp=%#x ids=%d->%d if=%d icmp=%d/%d",
		w.Verdict, w.Dir, w.Src, w.Sport, w.Dst, w.Dport, w.Proto, w.Flags, w.Reason, w.TCPFlags, w.SrcID, w.DstID, w.Ifindex, w.ICMPType, w.ICMPCode)
}

func wantOf(e FlowEvent) evWant {
	return evWant{Verdict: e.Verdict, Reason: e.DropReason, Dir: e.Direction, Src: e.Src, Dst: e.Dst,
		Sport: e.SrcPort, Dport: e.DstPort, Proto: e.Proto, Flags: evFlags(e), TCPFlags: e.TCPFlags,
		SrcID: e.SrcIdentity, DstID: e.DstIdentity, Ifindex: e.Ifindex, ICMPType: e.ICMPType, ICMPCode: e.ICMPCode}
}

// expectEvents checks that the ring holds exactly want, in order, each for
// a packet of len bytes taken after since.
func expectEvents(t *testing.T, d *Datapath, since time.Time, what string, want ...evWant) {
	t.Helper()
	got := drainEvents(t, d)
	var gs, ws []string
	for _, e := range got {
		gs = append(gs, wantOf(e).String())
	}
	for _, w := range want {
		ws = append(ws, w.String())
	}
	if strings.Join(gs, "\n") != strings.Join(ws, "\n") {
		t.Errorf("%s: events\n  %s\nwant\n  %s", what, strings.Join(gs, "\n  "), strings.Join(ws, "\n  "))
		return
	}
	now := time.Now()
	for i, e := range got {
		if e.Time.Before(since.Add(-10*time.Millisecond)) || e.Time.After(now.Add(10*time.Millisecond)) {
			t.Errorf("%s: event %d at %v, not within [%v, %v]", what, i, e.Time, since, now)
		}
		if want[i].packetSize != 0 && int(e.Len) != want[i].packetSize {
			t.Errorf("%s: event %d len %d, want %d", what, i, e.Len, want[i].packetSize)
		}
	}
}

// tcpEv is the event of a TCP packet between the fixture's addresses.
func tcpEv(v Verdict, dir Direction, src, dst netip.Addr, sport, dport uint16, flags string, tcp uint8, ifindex uint32, pkt []byte) evWant {
	ids := map[netip.Addr]uint32{srcIP: idS, localIP: idD, remIP: idR, otherIP: IdentityWorld, hostIP: IdentityHost}
	return evWant{Verdict: v, Dir: dir, Src: src, Dst: dst, Sport: sport, Dport: dport, Proto: ProtoTCP,
		Flags: flags, TCPFlags: tcp, SrcID: ids[src], DstID: ids[dst], Ifindex: ifindex, packetSize: len(pkt)}
}

func dropEv(reason DropReason, dir Direction, w evWant) evWant {
	w.Verdict, w.Reason, w.Dir = Dropped, reason, dir
	return w
}

// Drops, new connections, first replies and closings, as events, through
// BPF_PROG_TEST_RUN: same node (two observations), and across nodes (one).
func TestFlowEventsProgRun(t *testing.T) {
	requireRoot(t)
	for _, noPeer := range []bool{false, true} {
		t.Run(fmt.Sprintf("noRedirectPeer=%t", noPeer), func(t *testing.T) {
			f := newPolicyFixture(t, Options{Mode: Native, NoRedirectPeer: noPeer})
			d := f.d
			start := time.Now()

			// Denied by D's ingress: one event, INGRESS, at D's veth.
			f.set(localIP, true, false)
			syn := tcpPkt(srcIP, localIP, 40000, port, flagSYN)
			f.run("denied S->D", fromContainer, syn, ifS, actShot)
			expectEvents(t, d, start, "denied S->D",
				dropEv(DropPolicy, Ingress, tcpEv(0, 0, srcIP, localIP, 40000, port, "", flagSYN, ifD, syn)))
			// Denied by S's egress: EGRESS, at S's veth; to world.
			f.set(srcIP, false, true)
			synW := tcpPkt(srcIP, otherIP, 40001, 443, flagSYN)
			f.run("denied S->world", fromContainer, synW, ifS, actShot)
			expectEvents(t, d, start, "denied S->world",
				dropEv(DropPolicy, Egress, tcpEv(0, 0, srcIP, otherIP, 40001, 443, "", flagSYN, ifS, synW)))
			// From another node: INGRESS at D.
			synR := tcpPkt(remIP, localIP, 50000, port, flagSYN)
			f.run("denied remote->D", fromNetdev, synR, 7, actShot)
			expectEvents(t, d, start, "denied remote->D",
				dropEv(DropPolicy, Ingress, tcpEv(0, 0, remIP, localIP, 50000, port, "", flagSYN, ifD, synR)))
			// Other reasons: spoofed source, truncated header.
			spoof := udpPkt(otherIP, localIP, 1, 2)
			f.run("spoofed", fromContainer, spoof, ifS, actShot)
			trunc := ipv4(srcIP, localIP, ProtoTCP, tcpHdr(1, 2, flagSYN)[:10], 1, 0)
			f.run("truncated", fromContainer, trunc, ifS, actShot)
			expectEvents(t, d, start, "other reasons",
				evWant{Verdict: Dropped, Reason: DropInvalidSourceIP, Dir: Egress, Src: otherIP, Dst: localIP, Proto: ProtoUDP,
					SrcID: IdentityWorld, DstID: idD, Ifindex: ifS, packetSize: len(spoof)},
				evWant{Verdict: Dropped, Reason: DropCTInvalidHeader, Dir: Egress, Src: srcIP, Dst: localIP, Proto: ProtoTCP,
					SrcID: idS, DstID: idD, Ifindex: ifS, packetSize: len(trunc)})

			// Allowed, same node: the new connection from both points of
			// view, then its first reply from both, later packets none.
			f.set(srcIP, false, false)
			f.set(localIP, true, false, in(idS, port, ProtoTCP))
			f.run("S->D SYN", fromContainer, syn, ifS, actRedirect)
			expectEvents(t, d, start, "S->D SYN",
				tcpEv(Forwarded, Egress, srcIP, localIP, 40000, port, "new", flagSYN, ifS, syn),
				tcpEv(Forwarded, Ingress, srcIP, localIP, 40000, port, "new", flagSYN, ifD, syn))
			synAck := tcpPkt(localIP, srcIP, port, 40000, flagSYN|flagACK)
			f.run("D->S SYN-ACK", fromContainer, synAck, ifD, actRedirect)
			expectEvents(t, d, start, "D->S SYN-ACK",
				tcpEv(Forwarded, Egress, localIP, srcIP, port, 40000, "reply", flagSYN|flagACK, ifD, synAck),
				tcpEv(Forwarded, Ingress, localIP, srcIP, port, 40000, "reply", flagSYN|flagACK, ifS, synAck))
			f.run("S->D ACK", fromContainer, tcpPkt(srcIP, localIP, 40000, port, flagACK), ifS, actRedirect)
			f.run("D->S data", fromContainer, tcpPkt(localIP, srcIP, port, 40000, flagACK), ifD, actRedirect)
			f.run("D->S data again", fromContainer, tcpPkt(localIP, srcIP, port, 40000, flagACK), ifD, actRedirect)
			f.run("S->D SYN retransmitted", fromContainer, syn, ifS, actRedirect)
			if noPeer { // what bpf_redirect passes through next
				f.run("D->S data at S's to_container", toContainer, tcpPkt(localIP, srcIP, port, 40000, flagACK), ifD, actOK)
			}
			expectEvents(t, d, start, "established packets")

			// Closing: the first FIN of each direction.
			fin := tcpPkt(srcIP, localIP, 40000, port, flagFIN|flagACK)
			f.run("S->D FIN", fromContainer, fin, ifS, actRedirect)
			f.run("S->D FIN again", fromContainer, fin, ifS, actRedirect)
			finR := tcpPkt(localIP, srcIP, port, 40000, flagFIN|flagACK)
			f.run("D->S FIN", fromContainer, finR, ifD, actRedirect)
			f.run("S->D RST after its FIN", fromContainer, tcpPkt(srcIP, localIP, 40000, port, flagRST), ifS, actRedirect)
			f.run("D->S ACK", fromContainer, tcpPkt(localIP, srcIP, port, 40000, flagACK), ifD, actRedirect)
			expectEvents(t, d, start, "FINs",
				tcpEv(Forwarded, Egress, srcIP, localIP, 40000, port, "closing", flagFIN|flagACK, ifS, fin),
				tcpEv(Forwarded, Ingress, srcIP, localIP, 40000, port, "closing", flagFIN|flagACK, ifD, fin),
				tcpEv(Forwarded, Egress, localIP, srcIP, port, 40000, "reply closing", flagFIN|flagACK, ifD, finR),
				tcpEv(Forwarded, Ingress, localIP, srcIP, port, 40000, "reply closing", flagFIN|flagACK, ifS, finR))

			// Refused: the first reply is a RST, one event with both flags.
			syn2 := tcpPkt(srcIP, localIP, 40002, port, flagSYN)
			f.run("S->D SYN 2", fromContainer, syn2, ifS, actRedirect)
			rst := tcpPkt(localIP, srcIP, port, 40002, flagRST|flagACK)
			f.run("D->S RST", fromContainer, rst, ifD, actRedirect)
			expectEvents(t, d, start, "refused",
				tcpEv(Forwarded, Egress, srcIP, localIP, 40002, port, "new", flagSYN, ifS, syn2),
				tcpEv(Forwarded, Ingress, srcIP, localIP, 40002, port, "new", flagSYN, ifD, syn2),
				tcpEv(Forwarded, Egress, localIP, srcIP, port, 40002, "reply closing", flagRST|flagACK, ifD, rst),
				tcpEv(Forwarded, Ingress, localIP, srcIP, port, 40002, "reply closing", flagRST|flagACK, ifS, rst))

			// Across nodes: one observation on this node.
			out := tcpPkt(srcIP, remIP, 40003, 443, flagSYN)
			f.run("S->remote SYN", fromContainer, out, ifS, actRedirect)
			back := tcpPkt(remIP, srcIP, 443, 40003, flagSYN|flagACK)
			f.run("remote->S SYN-ACK", fromNetdev, back, 7, actRedirect)
			f.run("remote->S data", fromNetdev, tcpPkt(remIP, srcIP, 443, 40003, flagACK), 7, actRedirect)
			f.run("S->remote data", fromContainer, tcpPkt(srcIP, remIP, 40003, 443, flagACK), ifS, actRedirect)
			expectEvents(t, d, start, "S->remote",
				tcpEv(Forwarded, Egress, srcIP, remIP, 40003, 443, "new", flagSYN, ifS, out),
				tcpEv(Forwarded, Ingress, remIP, srcIP, 443, 40003, "reply", flagSYN|flagACK, ifS, back))
			synIn := tcpPkt(remIP, localIP, 50001, port, flagSYN)
			f.set(localIP, true, false, in(idR, port, ProtoTCP))
			f.run("remote->D SYN", fromOverlay, synIn, 7, actRedirect)
			reply := tcpPkt(localIP, remIP, port, 50001, flagSYN|flagACK)
			f.run("D->remote SYN-ACK", fromContainer, reply, ifD, actRedirect)
			expectEvents(t, d, start, "remote->D",
				tcpEv(Forwarded, Ingress, remIP, localIP, 50001, port, "new", flagSYN, ifD, synIn),
				tcpEv(Forwarded, Egress, localIP, remIP, port, 50001, "reply", flagSYN|flagACK, ifD, reply))

			// The node's own stack into D: the host identity.
			hostSyn := tcpPkt(hostIP, localIP, 33000, 8080, flagSYN)
			f.run("host->D", toContainer, hostSyn, 0, actOK)
			expectEvents(t, d, start, "host->D",
				tcpEv(Forwarded, Ingress, hostIP, localIP, 33000, 8080, "new", flagSYN, ifD, hostSyn))

			// UDP and ICMP: new and first reply; ICMP type and code; an
			// ICMP error is related and reports nothing.
			f.set(localIP, false, false)
			dg := udpPkt(srcIP, remIP, 40004, 53)
			f.run("S->remote udp", fromContainer, dg, ifS, actRedirect)
			f.run("S->remote udp again", fromContainer, dg, ifS, actRedirect)
			dgR := udpPkt(remIP, srcIP, 53, 40004)
			f.run("remote->S udp", fromNetdev, dgR, 7, actRedirect)
			f.run("remote->S udp again", fromNetdev, dgR, 7, actRedirect)
			f.run("remote->S port unreachable", fromNetdev, icmpErrorPkt(remIP, srcIP, 3, dg), 7, actRedirect)
			ping := echoPkt(srcIP, remIP, 8, 77)
			f.run("S->remote ping", fromContainer, ping, ifS, actRedirect)
			pong := echoPkt(remIP, srcIP, 0, 77)
			f.run("remote->S pong", fromNetdev, pong, 7, actRedirect)
			expectEvents(t, d, start, "udp, icmp",
				evWant{Verdict: Forwarded, Dir: Egress, Src: srcIP, Dst: remIP, Sport: 40004, Dport: 53, Proto: ProtoUDP, Flags: "new", SrcID: idS, DstID: idR, Ifindex: ifS},
				evWant{Verdict: Forwarded, Dir: Ingress, Src: remIP, Dst: srcIP, Sport: 53, Dport: 40004, Proto: ProtoUDP, Flags: "reply", SrcID: idR, DstID: idS, Ifindex: ifS},
				evWant{Verdict: Forwarded, Dir: Egress, Src: srcIP, Dst: remIP, Sport: 77, Proto: ProtoICMP, Flags: "new", SrcID: idS, DstID: idR, Ifindex: ifS, ICMPType: 8},
				evWant{Verdict: Forwarded, Dir: Ingress, Src: remIP, Dst: srcIP, Dport: 77, Proto: ProtoICMP, Flags: "reply", SrcID: idR, DstID: idS, Ifindex: ifS, ICMPType: 0})
			f.set(srcIP, true, false)
			unreach := icmpErrorPkt(otherIP, srcIP, 13, udpPkt(srcIP, otherIP, 1, 2))
			// Not from a pod: the stack forwards it, to_container drops it.
			f.run("world->S unknown error at the underlay", fromNetdev, unreach, 7, actOK)
			f.run("world->S unknown error", toContainer, unreach, 7, actShot)
			expectEvents(t, d, start, "icmp error dropped",
				evWant{Verdict: Dropped, Reason: DropPolicy, Dir: Ingress, Src: otherIP, Dst: srcIP, Proto: ProtoICMP, SrcID: IdentityWorld, DstID: idS, Ifindex: ifS, ICMPType: 3, ICMPCode: 13})

			if n, err := d.LostEvents(); err != nil || n != 0 {
				t.Errorf("LostEvents = %d, %v", n, err)
			}
		})
	}
}

// counterMap is Counters by (verdict, direction, reason).
type counterKey struct {
	v Verdict
	d Direction
	r DropReason
}

func counters(t *testing.T, d *Datapath) map[counterKey][2]uint64 {
	t.Helper()
	cs, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[counterKey][2]uint64)
	for _, c := range cs {
		k := counterKey{c.Verdict, c.Direction, c.DropReason}
		if _, dup := m[k]; dup {
			t.Fatalf("Counters: %v twice", k)
		}
		m[k] = [2]uint64{c.Packets, c.Bytes}
	}
	return m
}

// countedRun runs a packet and adds what it must count to want.
type counting struct {
	f    *policyFixture
	want map[counterKey][2]uint64
}

func (c *counting) run(what string, prog func(*Datapath) *ebpf.Program, pkt []byte, ifindex, verdict uint32, counts ...counterKey) {
	c.f.t.Helper()
	c.f.run(what, prog, pkt, ifindex, verdict)
	for _, k := range counts {
		v := c.want[k]
		c.want[k] = [2]uint64{v[0] + 1, v[1] + uint64(len(pkt))}
	}
}

var (
	fwdIn   = counterKey{Forwarded, Ingress, 0}
	fwdOut  = counterKey{Forwarded, Egress, 0}
	denyIn  = counterKey{Dropped, Ingress, DropPolicy}
	denyOut = counterKey{Dropped, Egress, DropPolicy}
)

// The counters move by exactly the packets and bytes run, with events on
// and off (and then no event is written), with and without redirect_peer.
func TestCountersProgRun(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		noEvents, noPeer bool
	}{{false, false}, {true, false}, {false, true}, {true, true}} {
		t.Run(fmt.Sprintf("noEvents=%t,noRedirectPeer=%t", tc.noEvents, tc.noPeer), func(t *testing.T) {
			f := newPolicyFixture(t, Options{Mode: Native, NoEvents: tc.noEvents, NoRedirectPeer: tc.noPeer})
			if c := counters(t, f.d); len(c) != 0 {
				t.Fatalf("new map: counters %v", c)
			}
			c := &counting{f: f, want: make(map[counterKey][2]uint64)}
			// Same node: egress and ingress, ingress where delivered.
			sameIn := []counterKey{fwdOut, fwdIn}
			if tc.noPeer {
				sameIn = []counterKey{fwdOut}
			}
			f.set(localIP, true, false, in(idS, port, ProtoTCP))
			for i := range 3 {
				c.run("S->D", fromContainer, tcpPkt(srcIP, localIP, 40000, port, flagSYN), ifS, actRedirect, sameIn...)
				c.run("D->S", fromContainer, tcpPkt(localIP, srcIP, port, 40000, flagSYN|flagACK), ifD, actRedirect, sameIn...)
				if tc.noPeer {
					c.run("S->D at D's to_container", toContainer, tcpPkt(srcIP, localIP, 40000, port, flagACK), ifS, actOK, fwdIn)
				}
				c.run("S->D denied", fromContainer, tcpPkt(srcIP, localIP, 41000+uint16(i), port+1, flagSYN), ifS, actShot, denyIn)
			}
			// Across nodes.
			f.set(srcIP, false, true, eg(idR, 0, ProtoUDP))
			c.run("S->remote", fromContainer, udpPkt(srcIP, remIP, 40001, 53), ifS, actRedirect, fwdOut)
			c.run("S->remote denied", fromContainer, tcpPkt(srcIP, remIP, 40001, 53, flagSYN), ifS, actShot, denyOut)
			remIn := []counterKey{fwdIn}
			if tc.noPeer {
				remIn = nil
			}
			c.run("remote->S reply", fromNetdev, udpPkt(remIP, srcIP, 53, 40001), 7, actRedirect, remIn...)
			c.run("remote->D denied", fromOverlay, tcpPkt(remIP, localIP, 1, port, flagSYN), 7, actShot, denyIn)
			// The node's stack, other reasons, and what no hook decides on.
			c.run("host->D", toContainer, tcpPkt(hostIP, localIP, 33000, port, flagSYN), 0, actOK, fwdIn)
			c.run("spoofed", fromContainer, udpPkt(otherIP, localIP, 1, 2), ifS, actShot, counterKey{Dropped, Egress, DropInvalidSourceIP})
			c.run("truncated", fromNetdev, ipv4(remIP, localIP, ProtoUDP, []byte{1, 2}, 1, 0), 7, actShot, counterKey{Dropped, Ingress, DropCTInvalidHeader})
			c.run("fragment", toContainer, ipv4(remIP, localIP, ProtoUDP, make([]byte, 16), 9, 3), 7, actShot, counterKey{Dropped, Ingress, DropFragNotFound})
			c.run("ARP", fromContainer, arp(), ifS, actOK)
			c.run("from_netdev, not for a pod", fromNetdev, udpPkt(remIP, otherIP, 1, 2), 7, actOK)
			c.run("to_container, not a pod", toContainer, udpPkt(remIP, otherIP, 1, 2), 7, actOK)
			c.run("to_overlay, no remote", toOverlay, udpPkt(srcIP, otherIP, 1, 2), 0, actShot)

			got := counters(t, f.d)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("counters\n  %v\nwant\n  %v", got, c.want)
			}
			evs := drainEvents(t, f.d)
			if tc.noEvents && len(evs) != 0 {
				t.Errorf("events off: %d events, first %v", len(evs), evs[0])
			}
			if !tc.noEvents && len(evs) == 0 {
				t.Error("events on: no events")
			}
			if n, err := f.d.LostEvents(); err != nil || n != 0 {
				t.Errorf("LostEvents = %d, %v", n, err)
			}
			// The counters are pinned: a new Load sees them.
			d2 := load(t, f.d.opts)
			if got := counters(t, d2); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("after a new Load: counters %v", got)
			}
		})
	}
}

// A full ring counts what it cannot take: events written + lost = events
// emitted.
func TestEventsLost(t *testing.T) {
	requireRoot(t)
	f := newPolicyFixture(t, Options{Mode: Native, eventsSize: 4096})
	f.set(localIP, true, false)
	const n = 200
	pkt := tcpPkt(srcIP, localIP, 40000, port, flagSYN)
	for range n {
		f.run("denied", fromContainer, pkt, ifS, actShot)
	}
	lost, err := f.d.LostEvents()
	if err != nil {
		t.Fatal(err)
	}
	got := len(drainEvents(t, f.d))
	t.Logf("ring of 4096 bytes: %d events read, %d lost", got, lost)
	// A record takes 8 bytes of header + 48.
	if got != 4096/56 || uint64(got)+lost != n {
		t.Fatalf("%d events read + %d lost, want %d + %d", got, lost, 4096/56, n-4096/56)
	}
	// Room again.
	f.run("denied", fromContainer, pkt, ifS, actShot)
	if got := len(drainEvents(t, f.d)); got != 1 {
		t.Fatalf("after draining: %d events, want 1", got)
	}
	if l, _ := f.d.LostEvents(); l != lost {
		t.Fatalf("lost %d, want still %d", l, lost)
	}
}

// ReadEvents delivers events as they come, returns nil when its context
// ends, and runs once at a time.
func TestReadEvents(t *testing.T) {
	requireRoot(t)
	f := newPolicyFixture(t, Options{Mode: Native})
	f.set(localIP, true, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evc := make(chan FlowEvent, 100)
	done := make(chan error, 1)
	go func() { done <- f.d.ReadEvents(ctx, func(e FlowEvent) { evc <- e }) }()
	for i := range 5 {
		f.run("denied", fromContainer, tcpPkt(srcIP, localIP, 40000+uint16(i), port, flagSYN), ifS, actShot)
	}
	for i := range 5 {
		select {
		case e := <-evc:
			if e.Verdict != Dropped || e.DropReason != DropPolicy || e.SrcPort != 40000+uint16(i) {
				t.Errorf("event %d: %v", i, e)
			}
			if i == 0 {
				t.Logf("event: %v", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d not read within 5s", i)
		}
	}
	// A second reader is refused while the first runs (it has delivered
	// events: it runs).
	if err := f.d.ReadEvents(ctx, func(FlowEvent) {}); !errors.Is(err, ErrEventsBusy) {
		t.Fatalf("second ReadEvents: %v, want ErrEventsBusy", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ReadEvents after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadEvents did not return after cancel")
	}
	// What comes later waits in the ring for the next reader.
	f.run("denied", fromContainer, tcpPkt(srcIP, localIP, 45000, port, flagSYN), ifS, actShot)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	var got []FlowEvent
	err := f.d.ReadEvents(ctx2, func(e FlowEvent) { got = append(got, e); cancel2() })
	if err != nil || len(got) != 1 || got[0].SrcPort != 45000 {
		t.Fatalf("next ReadEvents: %v, %v", got, err)
	}
	// An ended context returns at once.
	if err := f.d.ReadEvents(ctx2, func(FlowEvent) { t.Error("called") }); err != nil {
		t.Fatal(err)
	}
}

// The Go decoder matches the C layout that bpf2go generated.
func TestFlowEventLayout(t *testing.T) {
	if n := binary.Size(datapathFlowEvent{}); n != flowEventSize {
		t.Fatalf("struct flow_event is %d bytes, decoder expects %d", n, flowEventSize)
	}
	boot := time.Unix(1_700_000_000, 0)
	for range 100 {
		b := make([]byte, flowEventSize)
		for i := range b {
			b[i] = byte(rand.IntN(256))
		}
		var raw datapathFlowEvent
		if _, err := binary.Decode(b, binary.NativeEndian, &raw); err != nil {
			t.Fatal(err)
		}
		got, err := decodeFlowEvent(b, boot)
		if err != nil {
			t.Fatal(err)
		}
		want := FlowEvent{
			Time: boot.Add(time.Duration(raw.TsNs)), Src: addrOf(raw.Saddr), Dst: addrOf(raw.Daddr),
			SrcPort: be16(raw.Sport), DstPort: be16(raw.Dport), Proto: raw.Proto,
			ICMPType: raw.IcmpType, ICMPCode: raw.IcmpCode,
			Verdict: Verdict(raw.Verdict), DropReason: DropReason(raw.DropReason), Direction: Direction(raw.Direction),
			IsReply: raw.Flags&1 != 0, New: raw.Flags&2 != 0, Closing: raw.Flags&4 != 0, ToStack: raw.Flags&8 != 0, TCPFlags: raw.TcpFlags,
			SrcIdentity: raw.SrcIdentity, DstIdentity: raw.DstIdentity, Ifindex: raw.Ifindex, Len: raw.Len,
		}
		if got != want {
			t.Fatalf("decode % x:\n%+v\nwant\n%+v", b, got, want)
		}
	}
	if _, err := decodeFlowEvent(make([]byte, 47), boot); err == nil {
		t.Error("short record decoded")
	}
	if s := (FlowEvent{Verdict: Dropped, DropReason: DropPolicy, Direction: Ingress}).String(); !bytes.Contains([]byte(s), []byte("DROPPED INGRESS")) ||
		!strings.Contains(s, "Policy denied") {
		t.Errorf("String: %s", s)
	}
	for i := uint32(0); i < 4*metricsReasons; i++ {
		v, d, r := metricsKey(i)
		if idx := ((uint32(v)-1)*2+uint32(d)-1)*metricsReasons + uint32(r); idx != i {
			t.Fatalf("metricsKey(%d) = %v %v %v, back %d", i, v, d, r, idx)
		}
	}
}
