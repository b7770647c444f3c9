package loader

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

func pinnedLinkID(t *testing.T, pin string) link.ID {
	t.Helper()
	l, err := link.LoadPinnedLink(pin, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

// An agent restart (Close, then Load and Attach again from the same pins)
// keeps map entries and attachments, and connections keep working
// throughout; Unpin then removes everything.
func TestRestart(t *testing.T) {
	requireRoot(t)
	for _, mode := range []AttachMode{AttachTCX, AttachTC} {
		t.Run(string(mode), func(t *testing.T) {
			requireFeatures(t, mode == AttachTCX, false)
			t.Setenv(AttachEnv, string(mode))
			s := newSameNode(t, 1500)
			d1, err := Load(Options{PinPath: s.pin})
			if err != nil {
				t.Fatal(err)
			}
			s.attachAndRegister(t, d1)
			// Only the datapath delivers from here on.
			for _, p := range []*pod{s.a, s.b} {
				if err := s.node.h.RouteDel(p.nodeRoute); err != nil {
					t.Fatal(err)
				}
			}
			c, err := dial(s.a.ns, s.bAddr, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			step := func(what string) {
				t.Helper()
				if err := echo(c, 3*time.Second); err != nil {
					t.Fatalf("%s: established connection: %v", what, err)
				}
				mustConnect(t, s.a.ns, s.bAddr, what+": new connection")
			}
			step("before restart")
			before := checkAttached(t, s.node, s.a.hostIdx, ingress, mode)
			pinA := filepath.Join(s.pin, "links", fmt.Sprintf("%d-ingress", s.a.hostIdx))
			var linkID link.ID
			if mode == AttachTCX {
				linkID = pinnedLinkID(t, pinA)
			}

			if err := d1.Close(); err != nil {
				t.Fatal(err)
			}
			step("agent gone")

			d2 := load(t, Options{PinPath: s.pin})
			eps, err := d2.Endpoints()
			if err != nil {
				t.Fatal(err)
			}
			want := map[netip.Addr]EndpointInfo{s.a.ip: s.a.endpoint(), s.b.ip: s.b.endpoint()}
			if !reflect.DeepEqual(eps, want) {
				t.Fatalf("endpoints after reload: %v, want %v", eps, want)
			}
			step("reloaded")
			s.node.do(t, func() error {
				for _, p := range []*pod{s.a, s.b} {
					if err := d2.AttachEndpoint(p.hostIdx); err != nil {
						return err
					}
				}
				return nil
			})
			after := checkAttached(t, s.node, s.a.hostIdx, ingress, mode)
			switch mode {
			case AttachTCX:
				if got := pinnedLinkID(t, pinA); got != linkID {
					t.Errorf("link replaced (id %d -> %d), want an in-place update", linkID, got)
				}
				if reflect.DeepEqual(before.tcxProgs, after.tcxProgs) {
					t.Errorf("program not updated: %v", after.tcxProgs)
				}
			case AttachTC:
				if before.tcProgID == after.tcProgID {
					t.Errorf("filter program not replaced: id %d", after.tcProgID)
				}
			}
			step("re-attached")

			// Teardown: detach one device explicitly, Unpin the rest.
			s.node.do(t, func() error { return d2.DetachEndpoint(s.a.hostIdx) })
			checkDetached(t, s.node, s.a.hostIdx, ingress)
			if err := d2.Close(); err != nil {
				t.Fatal(err)
			}
			if err := Unpin(s.pin); err != nil {
				t.Fatal(err)
			}
			var left []string
			entries, _ := os.ReadDir(s.pin)
			for _, e := range entries {
				if e.Name() == "links" || strings.HasPrefix(e.Name(), "cnilab_") {
					left = append(left, e.Name())
				}
			}
			if len(left) != 0 {
				t.Errorf("pins left after Unpin: %v", left)
			}
			if mode == AttachTCX {
				checkDetached(t, s.node, s.b.hostIdx, ingress)
			}
		})
	}
}

// A pinned link whose device is gone is replaced, also when a new device got
// the same ifindex.
func TestStaleLinkReplaced(t *testing.T) {
	requireRoot(t)
	requireFeatures(t, true, false)
	t.Setenv(AttachEnv, "tcx")
	n := newNode(t, "node")
	d := load(t, Options{PinPath: bpffsDir(t)})
	mk := func(index int) int {
		t.Helper()
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lxcs", Index: index}, PeerName: "lxcs-peer"}
		if err := n.h.LinkAdd(v); err != nil {
			t.Fatal(err)
		}
		l, err := n.h.LinkByName("lxcs")
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().Index
	}
	idx := mk(0)
	n.do(t, func() error { return d.AttachEndpoint(idx) })
	if err := n.h.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lxcs"}}); err != nil {
		t.Fatal(err)
	}
	if got := mk(idx); got != idx {
		t.Fatalf("new device got ifindex %d, want %d", got, idx)
	}
	checkDetached(t, n, idx, ingress)
	n.do(t, func() error { return d.AttachEndpoint(idx) })
	checkAttached(t, n, idx, ingress, AttachTCX)
	// Switching attach modes on a live device leaves one program.
	t.Setenv(AttachEnv, "tc")
	dtc := load(t, Options{PinPath: d.opts.PinPath})
	n.do(t, func() error { return dtc.AttachEndpoint(idx) })
	checkAttached(t, n, idx, ingress, AttachTC)
	n.do(t, func() error { return d.AttachEndpoint(idx) })
	checkAttached(t, n, idx, ingress, AttachTCX)

	// Detaching from a device that is gone succeeds and drops the pin.
	if err := n.h.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lxcs"}}); err != nil {
		t.Fatal(err)
	}
	n.do(t, func() error { return d.DetachEndpoint(idx) })
	if _, err := os.Stat(d.pinOf(idx, ingress)); !os.IsNotExist(err) {
		t.Errorf("pin of a detached link: %v", err)
	}
}
