package netns

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/lab/config"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
)

// underlayBridge is the L2 segment every node and the control plane share. It
// lives in the lab's underlay namespace and has no port outside the lab.
const underlayBridge = "br0"

// createUnderlay makes the underlay namespace, its bridge, and the bridge
// address the control plane listens on.
func createUnderlay(c config.Config) error {
	if err := labns.Create(c.UnderlayNetns()); err != nil {
		return err
	}
	h, err := handleIn(c.UnderlayNetns())
	if err != nil {
		return err
	}
	defer h.Close()
	if err := loUp(h); err != nil {
		return fmt.Errorf("underlay: %w", err)
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: underlayBridge}}
	if err := h.LinkAdd(br); err != nil {
		return fmt.Errorf("underlay: add bridge %s: %w", underlayBridge, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: c.ControlPlaneIP(), Mask: net.CIDRMask(c.UnderlayPrefix(), 32)}}
	if err := h.AddrAdd(br, addr); err != nil {
		return fmt.Errorf("underlay: address %s on %s: %w", addr, underlayBridge, err)
	}
	if err := h.LinkSetUp(br); err != nil {
		return fmt.Errorf("underlay: set %s up: %w", underlayBridge, err)
	}
	return nil
}

// createNode makes node i's namespace with eth0 on the underlay bridge.
func createNode(c config.Config, i int) error {
	nodeNS := c.NodeNetns(i)
	if err := labns.Create(nodeNS); err != nil {
		return err
	}
	nh, err := handleIn(nodeNS)
	if err != nil {
		return err
	}
	defer nh.Close()
	uh, err := handleIn(c.UnderlayNetns())
	if err != nil {
		return err
	}
	defer uh.Close()
	if err := loUp(nh); err != nil {
		return fmt.Errorf("node %d: %w", i, err)
	}
	under, err := labns.Handle(c.UnderlayNetns())
	if err != nil {
		return err
	}
	defer under.Close()
	peer := fmt.Sprintf("node-%d", i)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: peer, PeerNamespace: netlink.NsFd(under)}
	if err := nh.LinkAdd(veth); err != nil {
		return fmt.Errorf("node %d: add veth eth0/%s: %w", i, peer, err)
	}
	br, err := uh.LinkByName(underlayBridge)
	if err != nil {
		return fmt.Errorf("node %d: find %s: %w", i, underlayBridge, err)
	}
	p, err := uh.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("node %d: find %s: %w", i, peer, err)
	}
	if err := uh.LinkSetMaster(p, br); err != nil {
		return fmt.Errorf("node %d: attach %s to %s: %w", i, peer, underlayBridge, err)
	}
	if err := uh.LinkSetUp(p); err != nil {
		return fmt.Errorf("node %d: set %s up: %w", i, peer, err)
	}
	eth, err := nh.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("node %d: find eth0: %w", i, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: c.NodeIP(i), Mask: net.CIDRMask(c.UnderlayPrefix(), 32)}}
	if err := nh.AddrAdd(eth, addr); err != nil {
		return fmt.Errorf("node %d: address %s: %w", i, addr, err)
	}
	if err := nh.LinkSetUp(eth); err != nil {
		return fmt.Errorf("node %d: set eth0 up: %w", i, err)
	}
	// The Service CIDR through eth0, as a node's default route would take
	// it: the node's own connections to a ClusterIP get as far as
	// kube-proxy's DNAT, which comes after the route lookup. It stays on
	// the lab's underlay.
	_, svc, err := net.ParseCIDR(c.ServiceCIDR)
	if err != nil {
		return fmt.Errorf("node %d: service CIDR: %w", i, err)
	}
	if err := nh.RouteReplace(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: svc, Src: c.NodeIP(i), Scope: netlink.SCOPE_LINK}); err != nil {
		return fmt.Errorf("node %d: route %s via eth0: %w", i, svc, err)
	}
	return nil
}

func handleIn(ns string) (*netlink.Handle, error) {
	nsh, err := labns.Handle(ns)
	if err != nil {
		return nil, err
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", ns, err)
	}
	return h, nil
}

func loUp(h *netlink.Handle) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}
