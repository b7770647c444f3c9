package loader

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// eventLog collects what ReadEvents delivers, until the test ends.
type eventLog struct {
	mu  sync.Mutex
	evs []FlowEvent
}

func collectEvents(t *testing.T, d *Datapath) *eventLog {
	t.Helper()
	l := &eventLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- d.ReadEvents(ctx, func(e FlowEvent) {
			l.mu.Lock()
			l.evs = append(l.evs, e)
			l.mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ReadEvents: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("ReadEvents did not return after cancel")
		}
	})
	return l
}

// waitFor waits until n events match (at most until the deadline), then a
// little longer for events that should not come, and returns the matching
// ones.
func (l *eventLog) waitFor(n int, match func(FlowEvent) bool, within time.Duration) []FlowEvent {
	get := func() []FlowEvent {
		l.mu.Lock()
		defer l.mu.Unlock()
		var out []FlowEvent
		for _, e := range l.evs {
			if match(e) {
				out = append(out, e)
			}
		}
		return out
	}
	deadline := time.Now().Add(within)
	for len(get()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	return get()
}

// ofConn matches the events of the TCP connection from client to server,
// either way.
func ofConn(client, server netip.AddrPort) func(FlowEvent) bool {
	return func(e FlowEvent) bool {
		if e.Proto != ProtoTCP {
			return false
		}
		src := netip.AddrPortFrom(e.Src, e.SrcPort)
		dst := netip.AddrPortFrom(e.Dst, e.DstPort)
		return src == client && dst == server || src == server && dst == client
	}
}

// evLine sums an event up for comparison: verdict, direction, flags,
// endpoints, identities, interface, and the TCP flags that matter.
func evLine(e FlowEvent) string {
	tcp := fmt.Sprintf("%#02x", e.TCPFlags)
	switch {
	case e.Closing && e.TCPFlags&(flagFIN|flagRST) != 0:
		tcp = "FIN/RST"
	case e.TCPFlags == flagSYN:
		tcp = "SYN"
	case e.TCPFlags == flagSYN|flagACK:
		tcp = "SYN-ACK"
	}
	s := fmt.Sprintf("%s %s [%s] %v->%v %s ids=%d->%d if=%d", e.Verdict, e.Direction, evFlags(e), e.Src, e.Dst, tcp,
		e.SrcIdentity, e.DstIdentity, e.Ifindex)
	if e.Verdict == Dropped {
		s += fmt.Sprintf(" reason=%d", e.DropReason)
	}
	return s
}

func checkLines(t *testing.T, what string, got []FlowEvent, want []string) {
	t.Helper()
	var gs []string
	for _, e := range got {
		gs = append(gs, evLine(e))
	}
	if strings.Join(gs, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: events\n  %s\nwant\n  %s", what, strings.Join(gs, "\n  "), strings.Join(want, "\n  "))
	}
}

// connectAndClose opens a connection from ns to addr, echoes once, closes
// it, and returns its client address.
func connectAndClose(t *testing.T, ns netns.NsHandle, addr string) netip.AddrPort {
	t.Helper()
	c, err := dial(ns, addr, 3*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	mustEcho(t, c, "events")
	return c.LocalAddr().(*net.TCPAddr).AddrPort()
}

// A TCP connection between two pods of one node, through the attached
// programs: ReadEvents delivers its new connection, first reply and the
// FIN of each side, each from both pods' points of view; a denied attempt
// gives drop events; forwarded packets count once per direction.
func TestFlowEventsSameNode(t *testing.T) {
	requireRoot(t)
	for _, tc := range sameNodeModes {
		t.Run(tc.name, func(t *testing.T) {
			requireFeatures(t, tc.mode == AttachTCX, !tc.noPeer)
			t.Setenv(AttachEnv, string(tc.mode))
			n := newPolicyNode(t)
			d := load(t, Options{PinPath: n.pin, NoRedirectPeer: tc.noPeer})
			n.start(t, d)
			log := collectEvents(t, d)
			a, b := n.a, n.b
			ia, ib := n.ids[a], n.ids[b]
			la, lb := a.hostIdx, b.hostIdx

			server := netip.MustParseAddrPort(n.bAddr)
			client := connectAndClose(t, a.ns, n.bAddr)
			got := log.waitFor(8, ofConn(client, server), 5*time.Second)
			ab := fmt.Sprintf("%v->%v", a.ip, b.ip)
			ba := fmt.Sprintf("%v->%v", b.ip, a.ip)
			checkLines(t, "a->b connection", got, []string{
				fmt.Sprintf("FORWARDED EGRESS [new] %s SYN ids=%d->%d if=%d", ab, ia, ib, la),
				fmt.Sprintf("FORWARDED INGRESS [new] %s SYN ids=%d->%d if=%d", ab, ia, ib, lb),
				fmt.Sprintf("FORWARDED EGRESS [reply] %s SYN-ACK ids=%d->%d if=%d", ba, ib, ia, lb),
				fmt.Sprintf("FORWARDED INGRESS [reply] %s SYN-ACK ids=%d->%d if=%d", ba, ib, ia, la),
				fmt.Sprintf("FORWARDED EGRESS [closing] %s FIN/RST ids=%d->%d if=%d", ab, ia, ib, la),
				fmt.Sprintf("FORWARDED INGRESS [closing] %s FIN/RST ids=%d->%d if=%d", ab, ia, ib, lb),
				fmt.Sprintf("FORWARDED EGRESS [reply closing] %s FIN/RST ids=%d->%d if=%d", ba, ib, ia, lb),
				fmt.Sprintf("FORWARDED INGRESS [reply closing] %s FIN/RST ids=%d->%d if=%d", ba, ib, ia, la),
			})
			for _, e := range got {
				if e.Len < 54 || time.Since(e.Time) > time.Minute || time.Since(e.Time) < 0 {
					t.Errorf("event %v: bad len or time", e)
				}
			}

			// Denied: every dropped SYN is an event at b's ingress.
			mustSetPolicy(t, d, b, true, false)
			mustNotConnect(t, a.ns, n.bAddr, "b deny-all: a->b")
			isDrop := func(e FlowEvent) bool { return e.Verdict == Dropped }
			drops := log.waitFor(1, isDrop, 5*time.Second)
			if len(drops) == 0 {
				t.Fatal("no drop event")
			}
			want := fmt.Sprintf("DROPPED INGRESS [] %s SYN ids=%d->%d if=%d reason=133", ab, ia, ib, lb)
			for _, e := range drops {
				if evLine(e) != want || e.DropReason.String() != "Policy denied" {
					t.Errorf("drop event %s, want %s", evLine(e), want)
				}
			}
			t.Logf("%d drop events, e.g. %v", len(drops), drops[0])

			// Counters: same-node packets count once as each direction,
			// drops once.
			cs := counters(t, d)
			out, in, deny := cs[fwdOut], cs[fwdIn], cs[denyIn]
			if out[0] == 0 || out != in {
				t.Errorf("forwarded egress %v, ingress %v: want equal, not zero", out, in)
			}
			if deny[0] != uint64(len(drops)) {
				t.Errorf("dropped (policy, ingress): %v, want %d packets (the drop events)", deny, len(drops))
			}
			if len(cs) != 3 {
				t.Errorf("counters: %v", cs)
			}
			if lost, err := d.LostEvents(); err != nil || lost != 0 {
				t.Errorf("LostEvents = %d, %v", lost, err)
			}
			t.Logf("counters: %v", cs)
		})
	}
}

// Across nodes each node reports its own pod's point of view: the client's
// node EGRESS for what its pod sends, INGRESS for the replies; the server's
// node the other way round.
func TestFlowEventsCrossNode(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name   string
		mode   RoutingMode
		attach AttachMode
	}{
		{"native-tcx", Native, AttachTCX},
		{"vxlan-tc", VXLAN, AttachTC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := startCluster(t, tc.mode, tc.attach)
			a.writeIdentities(t, b)
			b.writeIdentities(t, a)
			logA, logB := collectEvents(t, a.dp), collectEvents(t, b.dp)
			bAddr := b.pod.ip.String() + ":8080"
			serveEcho(t, b.pod.ns, bAddr)

			server := netip.MustParseAddrPort(bAddr)
			client := connectAndClose(t, a.pod.ns, bAddr)
			ab := fmt.Sprintf("%v->%v", a.pod.ip, b.pod.ip)
			ba := fmt.Sprintf("%v->%v", b.pod.ip, a.pod.ip)
			// Identities are node-local: each node's own pod is 256.
			checkLines(t, "node a", logA.waitFor(4, ofConn(client, server), 5*time.Second), []string{
				fmt.Sprintf("FORWARDED EGRESS [new] %s SYN ids=256->257 if=%d", ab, a.pod.hostIdx),
				fmt.Sprintf("FORWARDED INGRESS [reply] %s SYN-ACK ids=257->256 if=%d", ba, a.pod.hostIdx),
				fmt.Sprintf("FORWARDED EGRESS [closing] %s FIN/RST ids=256->257 if=%d", ab, a.pod.hostIdx),
				fmt.Sprintf("FORWARDED INGRESS [reply closing] %s FIN/RST ids=257->256 if=%d", ba, a.pod.hostIdx),
			})
			checkLines(t, "node b", logB.waitFor(4, ofConn(client, server), 5*time.Second), []string{
				fmt.Sprintf("FORWARDED INGRESS [new] %s SYN ids=257->256 if=%d", ab, b.pod.hostIdx),
				fmt.Sprintf("FORWARDED EGRESS [reply] %s SYN-ACK ids=256->257 if=%d", ba, b.pod.hostIdx),
				fmt.Sprintf("FORWARDED INGRESS [closing] %s FIN/RST ids=257->256 if=%d", ab, b.pod.hostIdx),
				fmt.Sprintf("FORWARDED EGRESS [reply closing] %s FIN/RST ids=256->257 if=%d", ba, b.pod.hostIdx),
			})
			// Every packet of the connection: sent by a's pod and
			// delivered to b's, and back.
			ca, cb := counters(t, a.dp), counters(t, b.dp)
			if ca[fwdOut][0] == 0 || ca[fwdOut][0] != cb[fwdIn][0] || ca[fwdIn][0] != cb[fwdOut][0] {
				t.Errorf("node a %v, node b %v: a's egress must be b's ingress and back", ca, cb)
			}
			t.Logf("node a: %v; node b: %v", ca, cb)
		})
	}
}
