package netns

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/lab/config"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
)

// CheckIsolation proves the lab cannot reach the machine's network: in every
// namespace of the lab, every route leads only to lab address ranges (only pod
// namespaces may have a default route, and only through their node's pod
// gateway), every link is of a kind the lab makes, and every veth's peer lives
// in a namespace of the same lab. It returns every violation found.
func (c *Cluster) CheckIsolation() error {
	return CheckIsolation(c.cfg)
}

// CheckIsolation is Cluster.CheckIsolation for a configuration.
func CheckIsolation(cfg config.Config) error {
	nss, err := labns.List(cfg.NetnsPrefix())
	if err != nil {
		return err
	}
	if len(nss) == 0 {
		return fmt.Errorf("lab %s has no namespaces", cfg.Name)
	}
	allowed := allowedNets(cfg)
	var errs []error
	for _, ns := range nss {
		errs = append(errs, checkNamespace(cfg, ns, nss, allowed)...)
	}
	return errors.Join(errs...)
}

func allowedNets(cfg config.Config) []*net.IPNet {
	var out []*net.IPNet
	for _, s := range []string{cfg.Underlay, cfg.ClusterCIDR, "127.0.0.0/8", "::1/128", "fe80::/10", "ff00::/8", "224.0.0.0/4"} {
		if _, n, err := net.ParseCIDR(s); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func checkNamespace(cfg config.Config, ns string, all []string, allowed []*net.IPNet) []error {
	h, err := handleIn(ns)
	if err != nil {
		return []error{err}
	}
	defer h.Close()
	var errs []error
	_, rest, _ := cutLabName(ns)
	isPod := len(rest) > 4 && rest[:4] == "pod."
	_, cluster, _ := net.ParseCIDR(cfg.ClusterCIDR)
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return []error{fmt.Errorf("%s: list routes: %w", ns, err)}
	}
	for _, r := range routes {
		if r.Dst == nil || isDefault(r.Dst) {
			gwOK := r.Gw != nil && cluster.Contains(r.Gw)
			if !isPod || !gwOK {
				errs = append(errs, fmt.Errorf("%s: default route %s", ns, r))
			}
			continue
		}
		if !within(r.Dst, allowed) {
			errs = append(errs, fmt.Errorf("%s: route to %s leaves the lab's address ranges", ns, r.Dst))
		}
	}
	links, err := h.LinkList()
	if err != nil {
		return append(errs, fmt.Errorf("%s: list links: %w", ns, err))
	}
	// Namespace IDs, as this namespace sees them, of every namespace of the lab
	// (listing links first makes the kernel assign IDs to their peers' namespaces).
	labIDs := map[int]bool{-1: true}
	for _, other := range all {
		f, err := labns.Handle(other)
		if err != nil {
			continue
		}
		if id, err := h.GetNetNsIdByFd(int(f)); err == nil && id >= 0 {
			labIDs[id] = true
		}
		f.Close()
	}
	for _, l := range links {
		switch l.Type() {
		case "device":
			if l.Attrs().Name != "lo" {
				errs = append(errs, fmt.Errorf("%s: physical device %s in a lab namespace", ns, l.Attrs().Name))
			}
		case "veth":
			if !labIDs[l.Attrs().NetNsID] {
				errs = append(errs, fmt.Errorf("%s: veth %s has its peer outside the lab (netns id %d)", ns, l.Attrs().Name, l.Attrs().NetNsID))
			}
		case "bridge", "vxlan", "dummy":
		default:
			errs = append(errs, fmt.Errorf("%s: unexpected %s link %s", ns, l.Type(), l.Attrs().Name))
		}
	}
	return errs
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}

func within(n *net.IPNet, nets []*net.IPNet) bool {
	ones, _ := n.Mask.Size()
	for _, a := range nets {
		aOnes, aBits := a.Mask.Size()
		_, bits := n.Mask.Size()
		if aBits == bits && a.Contains(n.IP) && ones >= aOnes {
			return true
		}
	}
	return false
}
