package loader

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
)

const (
	vxlanName = "cnilab_vxlan"
	vxlanPort = 8472
	vxlanMTU  = 1450
)

// clusterNode is a node on the shared underlay with one pod.
type clusterNode struct {
	*node
	underlay netip.Addr
	podCIDR  netip.Prefix
	gw       netip.Addr
	eth0     int
	vxlan    int
	pod      *pod
	dp       *Datapath
	// serviceCIDR is given to Load (zero: none).
	serviceCIDR netip.Prefix
}

// newCluster makes two node namespaces joined by a veth (each end eth0 in
// its node) and one pod per node.
// startCluster skips without the attach mode's features, then makes two
// nodes with their datapaths loaded and attached in mode and attach.
func startCluster(t *testing.T, mode RoutingMode, attach AttachMode) (a, b *clusterNode) {
	t.Helper()
	requireFeatures(t, attach == AttachTCX, true)
	t.Setenv(AttachEnv, string(attach))
	a, b = newCluster(t, mode)
	a.start(t, mode, b)
	b.start(t, mode, a)
	return a, b
}

func newCluster(t *testing.T, mode RoutingMode) (a, b *clusterNode) {
	t.Helper()
	a = &clusterNode{node: newNode(t, "node-a"), underlay: netip.MustParseAddr("10.250.0.1"), podCIDR: netip.MustParsePrefix("10.251.1.0/24")}
	b = &clusterNode{node: newNode(t, "node-b"), underlay: netip.MustParseAddr("10.250.0.2"), podCIDR: netip.MustParsePrefix("10.251.2.0/24")}
	if err := a.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(b.ns))}); err != nil {
		t.Fatalf("underlay veth: %v", err)
	}
	mtu := 1500
	if mode == VXLAN {
		mtu = vxlanMTU
	}
	for _, n := range []*clusterNode{a, b} {
		eth0, err := n.h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		n.eth0 = eth0.Attrs().Index
		if err := n.h.AddrAdd(eth0, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(n.underlay, 24))}); err != nil {
			t.Fatal(err)
		}
		if err := n.h.LinkSetUp(eth0); err != nil {
			t.Fatal(err)
		}
		n.gw = n.podCIDR.Addr().Next()
		n.pod = addPod(t, n.node, "pod", "lxc0", n.gw.Next().Next(), n.gw, mtu)
		if mode == VXLAN {
			vx := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: vxlanName}, FlowBased: true, Port: vxlanPort}
			if err := n.h.LinkAdd(vx); err != nil {
				t.Fatalf("vxlan device: %v", err)
			}
			l, err := n.h.LinkByName(vxlanName)
			if err != nil {
				t.Fatal(err)
			}
			n.vxlan = l.Attrs().Index
			// NOARP: neighbours on it resolve to its own MAC, the programs
			// and the tunnel key do the rest.
			for _, err := range []error{n.h.LinkSetARPOff(l), n.h.LinkSetUp(l)} {
				if err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, pair := range [][2]*clusterNode{{a, b}, {b, a}} {
		n, peer := pair[0], pair[1]
		switch mode {
		case Native:
			if err := n.h.RouteAdd(&netlink.Route{Dst: ipNet(peer.podCIDR), Gw: net.IP(peer.underlay.AsSlice())}); err != nil {
				t.Fatal(err)
			}
		case VXLAN:
			// The node's own traffic to remote pods goes into the overlay,
			// from the gateway IP so that replies come back through it.
			lo, err := n.h.LinkByName("lo")
			if err != nil {
				t.Fatal(err)
			}
			if err := n.h.AddrAdd(lo, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(n.gw, 32))}); err != nil {
				t.Fatal(err)
			}
			if err := n.h.RouteAdd(&netlink.Route{Dst: ipNet(peer.podCIDR), LinkIndex: n.vxlan, Scope: netlink.SCOPE_LINK, Src: net.IP(n.gw.AsSlice())}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return a, b
}

func (n *clusterNode) start(t *testing.T, mode RoutingMode, peer *clusterNode) {
	t.Helper()
	n.dp = load(t, Options{PinPath: bpffsDir(t), Mode: mode, VXLANIfindex: n.vxlan, UnderlayIfindex: n.eth0, ServiceCIDR: n.serviceCIDR})
	n.do(t, func() error {
		if err := n.dp.AttachEndpoint(n.pod.hostIdx); err != nil {
			return err
		}
		if err := n.dp.AttachNetdev(n.eth0); err != nil {
			return err
		}
		if mode == VXLAN {
			return n.dp.AttachOverlay(n.vxlan)
		}
		return nil
	})
	if err := n.dp.UpsertEndpoint(n.pod.ip, n.pod.endpoint()); err != nil {
		t.Fatal(err)
	}
	// Both modes: the tunnel endpoint (VXLAN), and which sources are pods
	// of another node, delivered past the stack (both).
	if err := n.dp.UpsertRemote(peer.podCIDR, peer.underlay); err != nil {
		t.Fatal(err)
	}
}

// Pod to pod across two nodes: native routing (from_netdev delivers) and
// VXLAN (from_container encapsulates, from_overlay delivers, to_overlay
// carries the node's own traffic).
func TestForwardCrossNode(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name   string
		mode   RoutingMode
		attach AttachMode
	}{
		{"native-tcx", Native, AttachTCX},
		{"vxlan-tcx", VXLAN, AttachTCX},
		{"vxlan-tc", VXLAN, AttachTC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := startCluster(t, tc.mode, tc.attach)
			if tc.mode == VXLAN {
				checkAttached(t, a.node, a.vxlan, ingress, tc.attach)
				checkAttached(t, a.node, a.vxlan, egress, tc.attach)
			}
			checkAttached(t, b.node, b.eth0, ingress, tc.attach)
			bAddr := b.pod.ip.String() + ":8080"
			aAddr := a.pod.ip.String() + ":8080"
			serveEcho(t, b.pod.ns, bAddr)
			serveEcho(t, a.pod.ns, aAddr)

			mustConnect(t, a.pod.ns, bAddr, "pod a -> pod b")
			mustConnect(t, b.pod.ns, aAddr, "pod b -> pod a")
			mustBulk(t, a.pod.ns, bAddr, 4<<20)
			// Delivery on the receiving node is the programs', not the route's.
			if err := b.h.RouteDel(b.pod.nodeRoute); err != nil {
				t.Fatal(err)
			}
			mustConnect(t, a.pod.ns, bAddr, "pod a -> pod b without node b's route to it")

			if tc.mode != VXLAN {
				return
			}
			mustConnect(t, a.ns, bAddr, "node a -> pod b (to_overlay)")
			// No tunnel endpoint, no way to b: the underlay has no route to
			// pod CIDRs and to_overlay drops what it cannot encapsulate.
			if err := a.dp.DeleteRemote(b.podCIDR); err != nil {
				t.Fatal(err)
			}
			mustNotConnect(t, a.pod.ns, bAddr, "pod a -> pod b without remote entry")
			mustNotConnect(t, a.ns, bAddr, "node a -> pod b without remote entry")
			if err := a.dp.UpsertRemote(b.podCIDR, b.underlay); err != nil {
				t.Fatal(err)
			}
			mustConnect(t, a.pod.ns, bAddr, "pod a -> pod b with the remote entry back")
		})
	}
}
