package flows

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// numbered returns flows whose source port is their number, one second
// apart.
func numbered(from, to int) []Flow {
	var out []Flow
	for i := from; i <= to; i++ {
		ev := udpReply()
		ev.SrcPort = uint16(i)
		ev.Time = t0.Add(time.Duration(i) * time.Second)
		out = append(out, testEnricher.Enrich(ev))
	}
	return out
}

func srcPorts(fs []Flow) string {
	var s []uint16
	for _, f := range fs {
		p, _ := f.Ports()
		s = append(s, p)
	}
	return fmt.Sprint(s)
}

func TestStoreRingEviction(t *testing.T) {
	s := NewStore(3)
	for _, f := range numbered(1, 2) {
		s.Add(f)
	}
	if got := srcPorts(s.Query(Filter{})); s.Len() != 2 || got != "[1 2]" {
		t.Errorf("before wrap: len %d, %s", s.Len(), got)
	}
	for _, f := range numbered(3, 7) {
		s.Add(f)
	}
	if got := srcPorts(s.Query(Filter{})); s.Len() != 3 || got != "[5 6 7]" {
		t.Errorf("after wrap: len %d, %s; want [5 6 7]", s.Len(), got)
	}
	if got := srcPorts(s.Query(Filter{Last: 2})); got != "[6 7]" {
		t.Errorf("last=2: %s", got)
	}
	if NewStore(0).Len() != 0 || len(NewStore(0).ring) != DefaultCapacity {
		t.Errorf("default capacity is not %d", DefaultCapacity)
	}
}

func TestStoreQueryFilters(t *testing.T) {
	s := NewStore(0)
	drop := testEnricher.Enrich(synDrop())   // x/a:43210 -> y/b:80 TCP DROPPED, t0
	reply := testEnricher.Enrich(udpReply()) // y/b:53 -> x/a:40000 UDP FORWARDED, t0+1s
	other := testEnricher.Enrich(Event{Time: t0.Add(2 * time.Second), Src: netip.MustParseAddr("10.0.0.9"),
		Dst: ipNet, Proto: ProtoICMP, Verdict: VerdictForwarded}) // unknown -> world ICMP
	for _, f := range []Flow{drop, reply, other} {
		s.Add(f)
	}
	for _, tc := range []struct {
		filter Filter
		want   []Flow
	}{
		{Filter{}, []Flow{drop, reply, other}},
		{Filter{Namespace: "x"}, []Flow{drop, reply}},
		{Filter{Namespace: "z"}, nil},
		{Filter{Pod: "y/b"}, []Flow{drop, reply}},
		{Filter{Pod: "x/b"}, nil},
		{Filter{Verdict: "DROPPED"}, []Flow{drop}},
		{Filter{Verdict: "FORWARDED"}, []Flow{reply, other}},
		{Filter{Protocol: "UDP"}, []Flow{reply}},
		{Filter{Protocol: "ICMPv4"}, []Flow{other}},
		{Filter{Port: 80}, []Flow{drop}},
		{Filter{Port: 40000}, []Flow{reply}},
		{Filter{Since: t0.Add(time.Second)}, []Flow{reply, other}},
		{Filter{Last: 1}, []Flow{other}},
		{Filter{Namespace: "y", Verdict: "FORWARDED", Protocol: "UDP", Port: 53}, []Flow{reply}},
		{Filter{Pod: "x/a", Verdict: "DROPPED", Port: 53}, nil},
		{Filter{Namespace: "x", Last: 1}, []Flow{reply}},
	} {
		got := s.Query(tc.filter)
		if len(got) != len(tc.want) {
			t.Errorf("Query(%+v) = %d flows, want %d", tc.filter, len(got), len(tc.want))
			continue
		}
		for i := range got {
			if !got[i].Time.Equal(tc.want[i].Time) {
				t.Errorf("Query(%+v)[%d] = %s, want %s", tc.filter, i, got[i].Summary, tc.want[i].Summary)
			}
		}
	}
}

func TestStoreFollow(t *testing.T) {
	s := NewStore(10)
	for _, f := range numbered(1, 3) {
		s.Add(f)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := s.Follow(ctx, Filter{Last: 2})
	all := s.Follow(ctx, Filter{}) // no history: new flows only
	for _, f := range numbered(4, 5) {
		s.Add(f)
	}
	if got := srcPorts(recv(t, ch, 4)); got != "[2 3 4 5]" {
		t.Errorf("follow last=2 got %s, want [2 3 4 5]", got)
	}
	if got := srcPorts(recv(t, all, 2)); got != "[4 5]" {
		t.Errorf("follow got %s, want [4 5]", got)
	}
	cancel()
	for range ch { // closed once ctx is done
	}
	waitFollowers(t, s, 0)
}

// TestStoreSlowFollower: Add never blocks on a follower that does not
// read; the flows it misses are counted.
func TestStoreSlowFollower(t *testing.T) {
	s := NewStore(100, WithFollowBuffer(2))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	blocked := s.Follow(ctx, Filter{})
	fast := s.Follow(ctx, Filter{})
	done := make(chan struct{})
	go func() {
		for _, f := range numbered(1, 10) {
			s.Add(f)
			<-fast // the fast follower reads as it goes
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Add blocked on a slow follower")
	}
	if d := s.SubscriberDrops(); d != 8 {
		t.Errorf("SubscriberDrops = %d, want 8", d)
	}
	if got := srcPorts(recv(t, blocked, 2)); got != "[1 2]" {
		t.Errorf("slow follower got %s, want its buffer [1 2]", got)
	}
}

func recv(t *testing.T, ch <-chan Flow, n int) []Flow {
	t.Helper()
	var out []Flow
	for len(out) < n {
		select {
		case f := <-ch:
			out = append(out, f)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d flows, want %d", len(out), n)
		}
	}
	return out
}

func waitFollowers(t *testing.T, s *Store, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.followers() != n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d followers, want %d", s.followers(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
