package loader

import (
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

const echoPort = 8080

// policyNode is one node namespace with pods a, b, c (identities 256, 257,
// 258) and an echo server on the node's own gateway address.
type policyNode struct {
	*sameNode
	c        *pod
	cAddr    string
	nodeAddr string // the node's echo server
	ids      map[*pod]uint32
}

func newPolicyNode(t *testing.T) *policyNode {
	t.Helper()
	n := &policyNode{sameNode: newSameNode(t, 1500)}
	n.c = addPod(t, n.node, "pod-c", "lxcc", netip.MustParseAddr("10.248.0.12"), n.gwAddr, 1500)
	n.cAddr = n.c.ip.String() + ":8080"
	serveEcho(t, n.c.ns, n.cAddr)
	// The node sends to its pods from its gateway address, and serves on it.
	lo, err := n.node.h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.node.h.AddrAdd(lo, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(n.gwAddr, 32))}); err != nil {
		t.Fatal(err)
	}
	n.nodeAddr = n.gwAddr.String() + ":9090"
	serveEcho(t, n.node.ns, n.nodeAddr)
	n.ids = map[*pod]uint32{n.a: 256, n.b: 257, n.c: 258}
	return n
}

func (n *policyNode) pods() []*pod { return []*pod{n.a, n.b, n.c} }

// start attaches and registers the three pods and writes their identities
// and the node's.
func (n *policyNode) start(t *testing.T, d *Datapath) {
	t.Helper()
	n.node.do(t, func() error {
		for _, p := range n.pods() {
			if err := d.AttachEndpoint(p.hostIdx); err != nil {
				return err
			}
		}
		return nil
	})
	for _, p := range n.pods() {
		if err := d.UpsertEndpoint(p.ip, p.endpoint()); err != nil {
			t.Fatal(err)
		}
		if err := d.UpsertIdentity(netip.PrefixFrom(p.ip, 32), n.ids[p]); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.UpsertIdentity(netip.PrefixFrom(n.gwAddr, 32), IdentityHost); err != nil {
		t.Fatal(err)
	}
}

func mustSetPolicy(t *testing.T, d *Datapath, p *pod, ingress, egress bool, keys ...PolicyKey) {
	t.Helper()
	if err := d.SetPolicy(p.ip, keys); err != nil {
		t.Fatal(err)
	}
	if err := d.SetEndpointPolicy(p.ip, ingress, egress); err != nil {
		t.Fatal(err)
	}
}

func mustEcho(t *testing.T, c net.Conn, what string) {
	t.Helper()
	if err := echo(c, 3*time.Second); err != nil {
		t.Fatalf("%s: established connection: %v", what, err)
	}
}

func ctCount(t *testing.T, d *Datapath) int {
	t.Helper()
	n, err := d.ConntrackCount()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Same-node pods a, b, c through real veths: default deny, allow by
// identity, established connections across policy changes, egress, and the
// node's own traffic.
func TestPolicySameNode(t *testing.T) {
	requireRoot(t)
	for _, tc := range sameNodeModes {
		t.Run(tc.name, func(t *testing.T) {
			requireFeatures(t, tc.mode == AttachTCX, !tc.noPeer)
			t.Setenv(AttachEnv, string(tc.mode))
			n := newPolicyNode(t)
			d := load(t, Options{PinPath: n.pin, NoRedirectPeer: tc.noPeer})
			n.start(t, d)
			for _, p := range n.pods() {
				checkAttached(t, n.node, p.hostIdx, ingress, tc.mode)
				checkAttached(t, n.node, p.hostIdx, egress, tc.mode)
			}
			a, b, c := n.a, n.b, n.c
			allowA := in(n.ids[a], echoPort, ProtoTCP)

			mustConnect(t, a.ns, n.bAddr, "no policy: a->b")
			mustConnect(t, c.ns, n.bAddr, "no policy: c->b")

			// b: default deny ingress.
			mustSetPolicy(t, d, b, true, false)
			mustNotConnect(t, a.ns, n.bAddr, "b deny-all: a->b")
			mustNotConnect(t, c.ns, n.bAddr, "b deny-all: c->b")
			mustConnect(t, b.ns, n.aAddr, "b deny-all: b->a (and its replies)")
			mustConnect(t, n.node.ns, n.bAddr, "b deny-all: node->b")
			mustConnect(t, b.ns, n.nodeAddr, "b deny-all: b->node")

			// Allow a's identity.
			mustSetPolicy(t, d, b, true, false, allowA)
			mustConnect(t, a.ns, n.bAddr, "b allows a: a->b")
			mustNotConnect(t, c.ns, n.bAddr, "b allows a: c->b")

			// An established a->b connection across policy changes.
			conn, err := dial(a.ns, n.bAddr, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			mustEcho(t, conn, "before changes")
			for i, keys := range [][]PolicyKey{
				{allowA, in(n.ids[c], 9999, ProtoTCP)},
				{in(n.ids[a], 0, ProtoTCP)},
				{in(IdentityAny, echoPort, ProtoTCP), in(n.ids[c], 0, ProtoUDP)},
				{allowA},
			} {
				if err := d.SetPolicy(b.ip, keys); err != nil {
					t.Fatal(err)
				}
				got, err := d.PolicyEntries(b.ip)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(keys) {
					t.Fatalf("change %d: entries %v, want %v", i, got, keys)
				}
				mustEcho(t, conn, "policy change that keeps a allowed")
			}
			mustConnect(t, a.ns, n.bAddr, "after changes: new a->b")

			// Removed: new connections fail, the tracked one goes on.
			if err := d.DeletePolicy(b.ip); err != nil {
				t.Fatal(err)
			}
			mustNotConnect(t, a.ns, n.bAddr, "policy removed: new a->b")
			mustEcho(t, conn, "policy removed: established a->b is tracked")
			// Forgotten by conntrack: its next packet is a new flow, denied.
			if err := d.ConntrackFlush(); err != nil {
				t.Fatal(err)
			}
			if err := echo(conn, time.Second); err == nil {
				t.Fatal("after ConntrackFlush: established a->b still works")
			} else {
				t.Logf("after ConntrackFlush: established a->b stalls: %v", err)
			}
			conn.Close()

			// b's egress denied too: connections to b that its ingress
			// allows still work (replies are tracked), the node's too; b
			// opens nothing, not even to the node.
			mustSetPolicy(t, d, b, true, true, allowA)
			mustConnect(t, a.ns, n.bAddr, "b egress deny: a->b")
			mustConnect(t, n.node.ns, n.bAddr, "b egress deny: node->b")
			mustNotConnect(t, b.ns, n.aAddr, "b egress deny: b->a")
			mustNotConnect(t, b.ns, n.nodeAddr, "b egress deny: b->node")
			mustSetPolicy(t, d, b, true, true, allowA, eg(IdentityHost, 9090, ProtoTCP))
			mustConnect(t, b.ns, n.nodeAddr, "b egress allows the node: b->node")
			mustNotConnect(t, b.ns, n.aAddr, "b egress allows the node: b->a")

			// a's egress: only to b; a->c fails although c enforces nothing.
			mustSetPolicy(t, d, a, false, true, eg(n.ids[b], echoPort, ProtoTCP))
			mustConnect(t, a.ns, n.bAddr, "a egress to b: a->b")
			mustNotConnect(t, a.ns, n.cAddr, "a egress to b: a->c")
			mustConnect(t, c.ns, n.aAddr, "a egress to b: c->a (replies tracked)")
			mustBulk(t, a.ns, n.bAddr, 4<<20)

			// GC keeps live connections; far in the future it empties the map.
			before := ctCount(t, d)
			if del, err := d.GCConntrack(time.Now()); err != nil || del != 0 {
				t.Fatalf("GC now: deleted %d, %v", del, err)
			}
			if del, err := d.GCConntrack(time.Now().Add(time.Hour)); err != nil || del != before {
				t.Fatalf("GC in an hour: deleted %d of %d, %v", del, before, err)
			}
			if n := ctCount(t, d); n != 0 {
				t.Fatalf("%d entries after GC", n)
			}
		})
	}
}

// writeIdentities writes a two-node cluster's identities on n: its pod 256,
// the other node's pod 257, the other node's addresses as remote-node, its
// own as host.
func (n *clusterNode) writeIdentities(t *testing.T, peer *clusterNode) {
	t.Helper()
	for p, id := range map[netip.Prefix]uint32{
		netip.PrefixFrom(n.pod.ip, 32):      256,
		netip.PrefixFrom(peer.pod.ip, 32):   257,
		netip.PrefixFrom(n.underlay, 32):    IdentityHost,
		netip.PrefixFrom(n.gw, 32):          IdentityHost,
		netip.PrefixFrom(peer.underlay, 32): IdentityRemoteNode,
		netip.PrefixFrom(peer.gw, 32):       IdentityRemoteNode,
	} {
		if err := n.dp.UpsertIdentity(p, id); err != nil {
			t.Fatal(err)
		}
	}
}

// Ingress policy of a pod is enforced on its own node, for traffic from
// the other node; replies of allowed connections pass on both nodes.
func TestPolicyCrossNode(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name   string
		mode   RoutingMode
		attach AttachMode
	}{
		{"native-tcx", Native, AttachTCX},
		{"native-tc", Native, AttachTC},
		{"vxlan-tcx", VXLAN, AttachTCX},
		{"vxlan-tc", VXLAN, AttachTC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := startCluster(t, tc.mode, tc.attach)
			a.writeIdentities(t, b)
			b.writeIdentities(t, a)
			bAddr := b.pod.ip.String() + ":8080"
			aAddr := a.pod.ip.String() + ":8080"
			serveEcho(t, b.pod.ns, bAddr)
			serveEcho(t, a.pod.ns, aAddr)
			// On node b, a's pod is 257 and b's pod 256 (identities are
			// node-local numbers).
			const peer = 257

			// b's pod: deny all ingress, enforced on node b.
			mustSetPolicy(t, b.dp, b.pod, true, false)
			mustNotConnect(t, a.pod.ns, bAddr, "b deny-all: pod a -> pod b")
			if ctCount(t, b.dp) != 0 {
				t.Errorf("node b tracked a denied connection")
			}
			if ctCount(t, a.dp) == 0 {
				t.Errorf("node a did not track pod a's attempts: not dropped on node b?")
			}
			mustConnect(t, b.pod.ns, aAddr, "b deny-all: pod b -> pod a (replies tracked on b)")
			mustNotConnect(t, a.ns, bAddr, "b deny-all: node a -> pod b")
			mustConnect(t, b.ns, bAddr, "b deny-all: node b -> pod b")

			// Allow pod a; a's pod denies all ingress: the replies from b
			// pass on node a by conntrack.
			mustSetPolicy(t, b.dp, b.pod, true, false, in(peer, 8080, ProtoTCP))
			mustSetPolicy(t, a.dp, a.pod, true, false)
			mustConnect(t, a.pod.ns, bAddr, "b allows a: pod a -> pod b")
			mustBulk(t, a.pod.ns, bAddr, 2<<20)
			mustNotConnect(t, b.pod.ns, aAddr, "a deny-all: pod b -> pod a")
			mustNotConnect(t, a.ns, bAddr, "b allows a: node a -> pod b (remote node)")
			mustSetPolicy(t, b.dp, b.pod, true, false, in(peer, 8080, ProtoTCP), in(IdentityRemoteNode, 0, 0))
			mustConnect(t, a.ns, bAddr, "b allows remote nodes: node a -> pod b")

			// An established connection survives removal (tracked on both
			// nodes), new ones fail.
			conn, err := dial(a.pod.ns, bAddr, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			mustEcho(t, conn, "allowed")
			mustSetPolicy(t, b.dp, b.pod, true, false)
			mustNotConnect(t, a.pod.ns, bAddr, "b policy removed: pod a -> pod b")
			mustEcho(t, conn, "b policy removed: established")

			// Egress of a's pod, enforced on node a.
			mustSetPolicy(t, b.dp, b.pod, false, false)
			mustSetPolicy(t, a.dp, a.pod, false, true, eg(peer, 9999, ProtoTCP))
			mustNotConnect(t, a.pod.ns, bAddr, "a egress: pod a -> pod b port 8080")
			mustSetPolicy(t, a.dp, a.pod, false, true, eg(peer, 8080, ProtoTCP))
			mustConnect(t, a.pod.ns, bAddr, "a egress allows b: pod a -> pod b")
		})
	}
}

// An agent restart (Close, Load, re-attach) keeps identities, policy and
// tracked connections: an allowed connection keeps working, denied ones
// stay denied.
func TestPolicyRestart(t *testing.T) {
	requireRoot(t)
	for _, mode := range []AttachMode{AttachTCX, AttachTC} {
		t.Run(string(mode), func(t *testing.T) {
			requireFeatures(t, mode == AttachTCX, false)
			t.Setenv(AttachEnv, string(mode))
			n := newPolicyNode(t)
			d1, err := Load(Options{PinPath: n.pin})
			if err != nil {
				t.Fatal(err)
			}
			n.start(t, d1)
			keys := []PolicyKey{in(n.ids[n.a], echoPort, ProtoTCP)}
			mustSetPolicy(t, d1, n.b, true, false, keys...)
			mustSetPolicy(t, d1, n.a, false, true, eg(n.ids[n.b], 0, ProtoTCP))
			conn, err := dial(n.a.ns, n.bAddr, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			mustEcho(t, conn, "before restart")
			ids1, err := d1.Identities()
			if err != nil {
				t.Fatal(err)
			}
			eps1, err := d1.Endpoints()
			if err != nil {
				t.Fatal(err)
			}
			ct1 := ctCount(t, d1)
			if err := d1.Close(); err != nil {
				t.Fatal(err)
			}
			mustEcho(t, conn, "agent gone")
			mustNotConnect(t, n.c.ns, n.bAddr, "agent gone: c->b")

			d2 := load(t, Options{PinPath: n.pin})
			if ids2, err := d2.Identities(); err != nil || !reflect.DeepEqual(ids1, ids2) {
				t.Fatalf("identities after reload: %v (%v), want %v", ids2, err, ids1)
			}
			if eps2, err := d2.Endpoints(); err != nil || !reflect.DeepEqual(eps1, eps2) || !eps2[n.b.ip].PolicyIngress || !eps2[n.a.ip].PolicyEgress {
				t.Fatalf("endpoints after reload: %v (%v), want %v", eps2, err, eps1)
			}
			got, err := d2.PolicyEntries(n.b.ip)
			want := []PolicyKey{{Endpoint: n.b.ip, Identity: n.ids[n.a], Port: echoPort, Proto: ProtoTCP}}
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("policy after reload: %v (%v), want %v", got, err, want)
			}
			if ct2 := ctCount(t, d2); ct2 < 1 || ct2 < ct1-2 {
				t.Fatalf("conntrack after reload: %d entries, had %d", ct2, ct1)
			}
			mustEcho(t, conn, "reloaded")
			n.node.do(t, func() error {
				for _, p := range n.pods() {
					if err := d2.AttachEndpoint(p.hostIdx); err != nil {
						return err
					}
				}
				return nil
			})
			mustEcho(t, conn, "re-attached")
			mustConnect(t, n.a.ns, n.bAddr, "re-attached: new a->b")
			mustNotConnect(t, n.c.ns, n.bAddr, "re-attached: c->b")
			mustNotConnect(t, n.a.ns, n.cAddr, "re-attached: a->c (a's egress)")

			// The new Datapath diffs against what the old one wrote.
			if err := d2.SetPolicy(n.b.ip, append(keys, in(n.ids[n.c], echoPort, ProtoTCP))); err != nil {
				t.Fatal(err)
			}
			mustConnect(t, n.c.ns, n.bAddr, "after SetPolicy on the new Datapath: c->b")
			if err := d2.SetPolicy(n.b.ip, nil); err != nil {
				t.Fatal(err)
			}
			if got, err := d2.PolicyEntries(n.b.ip); err != nil || len(got) != 0 {
				t.Fatalf("entries left: %v (%v)", got, err)
			}
			mustEcho(t, conn, "after policy removal (tracked)")
		})
	}
}
