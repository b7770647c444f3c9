package loader

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

// sameNode is one node namespace with two pods, as the CNI plugin wires them.
type sameNode struct {
	node   *node
	a, b   *pod
	pin    string
	bAddr  string // pod B's echo server
	aAddr  string // pod A's echo server
	gwAddr netip.Addr
}

func newSameNode(t *testing.T, mtu int) *sameNode {
	t.Helper()
	s := &sameNode{node: newNode(t, "node"), pin: bpffsDir(t), gwAddr: netip.MustParseAddr("10.248.0.1")}
	s.a = addPod(t, s.node, "pod-a", "lxca", netip.MustParseAddr("10.248.0.10"), s.gwAddr, mtu)
	s.b = addPod(t, s.node, "pod-b", "lxcb", netip.MustParseAddr("10.248.0.11"), s.gwAddr, mtu)
	s.aAddr, s.bAddr = s.a.ip.String()+":8080", s.b.ip.String()+":8080"
	serveEcho(t, s.a.ns, s.aAddr)
	serveEcho(t, s.b.ns, s.bAddr)
	return s
}

// attachAndRegister attaches from_container to both host veths and writes
// both endpoints.
func (s *sameNode) attachAndRegister(t *testing.T, d *Datapath) {
	t.Helper()
	s.node.do(t, func() error {
		for _, p := range []*pod{s.a, s.b} {
			if err := d.AttachEndpoint(p.hostIdx); err != nil {
				return err
			}
		}
		return nil
	})
	for _, p := range []*pod{s.a, s.b} {
		if err := d.UpsertEndpoint(p.ip, p.endpoint()); err != nil {
			t.Fatal(err)
		}
	}
}

// hookState is what is attached to one hook of a device.
type hookState struct {
	tcxProgs  []ebpf.ProgramID
	tcFilters int
	tcProgID  int
}

func hookOf(t *testing.T, n *node, ifindex int, h hook) hookState {
	t.Helper()
	var st hookState
	n.do(t, func() error {
		res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: h.tcx})
		if err != nil {
			return err
		}
		for _, p := range res.Programs {
			st.tcxProgs = append(st.tcxProgs, p.ID)
		}
		fs, _ := tcFilters(ifindex, h)
		st.tcFilters = len(fs)
		if len(fs) == 1 {
			st.tcProgID = fs[0].Id
		}
		return nil
	})
	return st
}

// checkAttached verifies that exactly one cnilab program sits on the hook,
// the way mode attaches it.
func checkAttached(t *testing.T, n *node, ifindex int, h hook, mode AttachMode) hookState {
	t.Helper()
	st := hookOf(t, n, ifindex, h)
	switch mode {
	case AttachTCX:
		if len(st.tcxProgs) != 1 || st.tcFilters != 0 {
			t.Fatalf("ifindex %d %s: want one TCX program and no tc filter, got %+v", ifindex, h.name, st)
		}
	case AttachTC:
		if len(st.tcxProgs) != 0 || st.tcFilters != 1 {
			t.Fatalf("ifindex %d %s: want one tc filter and no TCX program, got %+v", ifindex, h.name, st)
		}
	}
	return st
}

func checkDetached(t *testing.T, n *node, ifindex int, h hook) {
	t.Helper()
	if st := hookOf(t, n, ifindex, h); len(st.tcxProgs) != 0 || st.tcFilters != 0 {
		t.Fatalf("ifindex %d %s: still attached: %+v", ifindex, h.name, st)
	}
}

// sameNodeModes are the attach modes same-node tests run in: TCX, tc, and
// TCX with plain bpf_redirect instead of redirect_peer.
var sameNodeModes = []struct {
	name   string
	mode   AttachMode
	noPeer bool
}{
	{"tcx", AttachTCX, false},
	{"tc", AttachTC, false},
	{"tcx-redirect", AttachTCX, true},
}

// Same-node pod to pod over real veths, in both attach modes (and with plain
// bpf_redirect instead of redirect_peer).
func TestForwardSameNode(t *testing.T) {
	requireRoot(t)
	for _, tc := range sameNodeModes {
		t.Run(tc.name, func(t *testing.T) {
			requireFeatures(t, tc.mode == AttachTCX, !tc.noPeer)
			t.Setenv(AttachEnv, string(tc.mode))
			s := newSameNode(t, 1500)
			d := load(t, Options{PinPath: s.pin, NoRedirectPeer: tc.noPeer})
			if d.AttachMode() != tc.mode {
				t.Fatalf("attach mode %q, want %q", d.AttachMode(), tc.mode)
			}
			s.attachAndRegister(t, d)
			for _, p := range []*pod{s.a, s.b} {
				checkAttached(t, s.node, p.hostIdx, ingress, tc.mode)
			}
			checkPinModes(t, s.pin, tc.mode == AttachTCX)
			mustConnect(t, s.a.ns, s.bAddr, "a->b")
			mustConnect(t, s.b.ns, s.aAddr, "b->a")
			mustBulk(t, s.a.ns, s.bAddr, 4<<20)
			s.truncatedFramePassed(t)

			// The node's route to B is not needed: the programs deliver.
			if err := s.node.h.RouteDel(s.b.nodeRoute); err != nil {
				t.Fatal(err)
			}
			mustConnect(t, s.a.ns, s.bAddr, "a->b without the node route")
			// Without B's map entry (and the route) nothing delivers.
			if err := d.DeleteEndpoint(s.b.ip); err != nil {
				t.Fatal(err)
			}
			mustNotConnect(t, s.a.ns, s.bAddr, "a->b without map entry and route")
			if err := d.UpsertEndpoint(s.b.ip, s.b.endpoint()); err != nil {
				t.Fatal(err)
			}
			mustConnect(t, s.a.ns, s.bAddr, "a->b with the map entry back")

			// Detach: traffic to B (no route) stops.
			s.node.do(t, func() error { return d.DetachEndpoint(s.a.hostIdx) })
			checkDetached(t, s.node, s.a.hostIdx, ingress)
			mustNotConnect(t, s.a.ns, s.bAddr, "a->b after detach")
			s.node.do(t, func() error { return d.DetachEndpoint(s.a.hostIdx) }) // idempotent
		})
	}
}

// truncatedFramePassed sends a frame with an IPv4 ethertype but only 10
// bytes of IP header from pod A: the program must pass it to the node's
// stack untouched, which counts it as a header error.
func (s *sameNode) truncatedFramePassed(t *testing.T) {
	t.Helper()
	before, err := ipInHdrErrors(s.node.ns)
	if err != nil {
		t.Fatal(err)
	}
	frame := append(append(append([]byte{}, s.a.hostMAC...), s.a.mac...), 0x08, 0x00, 0x45, 0, 0, 0x54, 0, 0, 0, 0, 64, 6)
	var eth0 int
	if err := inNS(s.a.ns, func() error {
		l, err := netlink.LinkByName("eth0")
		if err == nil {
			eth0 = l.Attrs().Index
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := sendFrame(s.a.ns, eth0, frame); err != nil {
		t.Fatalf("send truncated frame: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		after, err := ipInHdrErrors(s.node.ns)
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("truncated frame did not reach the node's stack (InHdrErrors %d -> %d)", before, after)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkPinModes requires that only root can reach the node's pins: no
// group or other permission on any pinned map or link (0600) or directory
// (0700), and, when links are expected (TCX), links pinned.
func checkPinModes(t *testing.T, dir string, wantLinks bool) {
	t.Helper()
	files, links := 0, 0
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if !e.IsDir() {
			files++
			if strings.HasPrefix(p, filepath.Join(dir, linksDir)+"/") {
				links++
			}
		}
		if p != dir && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("pin %s: mode %v, want no group or other access", p, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk pins in %s: %v", dir, err)
	}
	if files == 0 || wantLinks && links == 0 {
		t.Fatalf("pins in %s: %d in all, %d links; want maps pinned and, with TCX, links", dir, files, links)
	}
}
