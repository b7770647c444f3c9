package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// aliasPrefix marks host veths cnilab made; the alias is
// "cnilab:<containerID>/<ifname>", which lets GC find orphans.
const aliasPrefix = "cnilab:"

// HostVethName is the node-side veth name of an attachment: "lxc" and the
// first 11 hex digits of sha256(containerID+ifname), 14 bytes in all.
func HostVethName(containerID, ifname string) string {
	sum := sha256.Sum256([]byte(containerID + ifname))
	return "lxc" + hex.EncodeToString(sum[:])[:11]
}

func hostAlias(containerID, ifname string) string {
	a := aliasPrefix + containerID + "/" + ifname
	if len(a) > 255 {
		a = a[:255]
	}
	return a
}

// parseAlias returns the attachment named by a host veth alias.
func parseAlias(alias string) (containerID, ifname string, ok bool) {
	rest, ok := strings.CutPrefix(alias, aliasPrefix)
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// wiring is what ADD needs to lay one pod interface down.
type wiring struct {
	containerID, ifName, hostName string
	ip, gateway                   netip.Addr
	gatewayMAC                    net.HardwareAddr // nil: the host veth's MAC
	mtu                           int              // 0: kernel default
}

// wired describes the result of setup.
type wired struct {
	host, pod netlink.Link
}

// setup creates the veth pair (peer created directly in the pod namespace),
// addresses and routes the pod side, and routes the pod's /32 to the host side.
// On error the caller deletes the host veth, which removes everything.
func (w *wiring) setup(node *netlink.Handle, podNS netns.NsHandle, pod *netlink.Handle) (*wired, error) {
	if old, err := node.LinkByName(w.hostName); err == nil {
		// A previous ADD of this attachment: start again from scratch.
		if err := node.LinkDel(old); err != nil {
			return nil, fmt.Errorf("delete stale host veth %s: %w", w.hostName, err)
		}
	}
	if _, err := pod.LinkByName(w.ifName); err == nil {
		return nil, fmt.Errorf("interface %s already exists in the pod network namespace", w.ifName)
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: w.hostName, MTU: w.mtu},
		PeerName:      w.ifName,
		PeerNamespace: netlink.NsFd(int(podNS)),
		PeerMTU:       uint32(w.mtu),
	}
	if err := node.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("create veth %s (pod side %s): %w", w.hostName, w.ifName, err)
	}
	host, err := node.LinkByName(w.hostName)
	if err != nil {
		return nil, fmt.Errorf("find host veth %s: %w", w.hostName, err)
	}
	if err := node.LinkSetAlias(host, hostAlias(w.containerID, w.ifName)); err != nil {
		return nil, fmt.Errorf("set alias on %s: %w", w.hostName, err)
	}
	if err := node.LinkSetUp(host); err != nil {
		return nil, fmt.Errorf("set %s up: %w", w.hostName, err)
	}
	podLink, err := pod.LinkByName(w.ifName)
	if err != nil {
		return nil, fmt.Errorf("find pod interface %s: %w", w.ifName, err)
	}
	gwMAC := w.gatewayMAC
	if len(gwMAC) == 0 {
		gwMAC = host.Attrs().HardwareAddr
	}
	if err := w.setupPod(pod, podLink, gwMAC); err != nil {
		return nil, err
	}
	if err := node.RouteReplace(hostRoute(host.Attrs().Index, w.ip)); err != nil {
		return nil, fmt.Errorf("add host route %s/32 dev %s: %w", w.ip, w.hostName, err)
	}
	// Re-read both ends so the MACs and states reported are the final ones.
	if host, err = node.LinkByIndex(host.Attrs().Index); err != nil {
		return nil, fmt.Errorf("read host veth %s: %w", w.hostName, err)
	}
	if podLink, err = pod.LinkByIndex(podLink.Attrs().Index); err != nil {
		return nil, fmt.Errorf("read pod interface %s: %w", w.ifName, err)
	}
	return &wired{host: host, pod: podLink}, nil
}

// setupPod configures the pod end: IP/32, up, a link route to the gateway, the
// default route through it, and a permanent neighbour entry for it.
func (w *wiring) setupPod(pod *netlink.Handle, l netlink.Link, gwMAC net.HardwareAddr) error {
	idx := l.Attrs().Index
	addr := &netlink.Addr{IPNet: host32(w.ip)}
	if err := pod.AddrAdd(l, addr); err != nil {
		return fmt.Errorf("add %s/32 to pod interface %s: %w", w.ip, w.ifName, err)
	}
	if err := pod.LinkSetUp(l); err != nil {
		return fmt.Errorf("set pod interface %s up: %w", w.ifName, err)
	}
	gwRoute := &netlink.Route{LinkIndex: idx, Dst: host32(w.gateway), Scope: netlink.SCOPE_LINK}
	if err := pod.RouteReplace(gwRoute); err != nil {
		return fmt.Errorf("add pod route %s/32 dev %s: %w", w.gateway, w.ifName, err)
	}
	if err := pod.RouteReplace(defaultRoute(idx, w.gateway)); err != nil {
		return fmt.Errorf("add pod default route via %s: %w", w.gateway, err)
	}
	neigh := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		IP: net.IP(w.gateway.AsSlice()), HardwareAddr: gwMAC}
	if err := pod.NeighSet(neigh); err != nil {
		return fmt.Errorf("add pod neighbour %s lladdr %s: %w", w.gateway, gwMAC, err)
	}
	return nil
}

func host32(ip netip.Addr) *net.IPNet {
	return &net.IPNet{IP: net.IP(ip.AsSlice()), Mask: net.CIDRMask(32, 32)}
}

func hostRoute(linkIndex int, ip netip.Addr) *netlink.Route {
	return &netlink.Route{LinkIndex: linkIndex, Dst: host32(ip), Scope: netlink.SCOPE_LINK}
}

func defaultRoute(linkIndex int, gw netip.Addr) *netlink.Route {
	return &netlink.Route{LinkIndex: linkIndex, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw: net.IP(gw.AsSlice()), Scope: netlink.SCOPE_UNIVERSE}
}

// deleteHostVeth removes the host veth (and with it the pod end and every
// route through it); a missing link is not an error. It reports whether a
// link was deleted.
func deleteHostVeth(node *netlink.Handle, name string, ips []netip.Addr) (bool, error) {
	l, err := node.LinkByName(name)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("find host veth %s: %w", name, err)
	}
	if _, ok := l.(*netlink.Veth); !ok {
		return false, fmt.Errorf("host link %s is a %s, not a veth: not deleting it", name, l.Type())
	}
	for _, ip := range ips {
		// The kernel drops these with the link; deleting first keeps the
		// node's table exact even if the link deletion fails.
		if err := node.RouteDel(hostRoute(l.Attrs().Index, ip)); err != nil && !errors.Is(err, unix.ESRCH) {
			return false, fmt.Errorf("delete host route %s/32 dev %s: %w", ip, name, err)
		}
	}
	if err := node.LinkDel(l); err != nil && !errors.As(err, new(netlink.LinkNotFoundError)) {
		return false, fmt.Errorf("delete host veth %s: %w", name, err)
	}
	return true, nil
}

// linkList is LinkList retried while the kernel reports an interrupted dump.
func linkList(h *netlink.Handle) ([]netlink.Link, error) {
	var err error
	for range 5 {
		var links []netlink.Link
		if links, err = h.LinkList(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return links, err
		}
	}
	return nil, err
}

// enableIPv4Forwarding turns on forwarding in the plugin's (the node's)
// namespace: pods reach each other and the node through the node's routes.
func enableIPv4Forwarding() error {
	const p = "/proc/sys/net/ipv4/ip_forward"
	b, err := os.ReadFile(p)
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	return nil
}
