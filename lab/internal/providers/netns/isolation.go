package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/lab/config"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
	"github.com/cnilab/cnilab/lab/internal/realnode"
	"github.com/cnilab/cnilab/lab/internal/sandbox"
)

// CheckIsolation proves the lab cannot reach the machine's network: in every
// namespace of the lab, every route leads only to lab address ranges (only pod
// namespaces may have a default route, and only through their node's pod
// gateway), every link is of a kind the lab makes, and every veth's peer lives
// in a namespace of the same lab. It returns every violation found.
//
// For VM nodes the backend checks inside every guest too (GuestIsolation).
func (c *Cluster) CheckIsolation() error {
	err := CheckIsolation(c.cfg)
	if g, ok := c.backend.(interface {
		GuestIsolation(config.Config) error
	}); ok {
		err = errors.Join(err, g.GuestIsolation(c.cfg))
	}
	return err
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
	var fds []int
	for _, other := range nss {
		if f, err := labns.Handle(other); err == nil {
			defer f.Close()
			fds = append(fds, int(f))
		}
	}
	// Real nodes' pods live in namespaces containerd made inside each node's
	// own mount namespace: they are found through the processes of the
	// nodes' cgroups.
	var realPods []*os.File
	if cfg.Real() {
		realPods = realPodNetns(cfg, fds)
		for _, f := range realPods {
			defer f.Close()
			fds = append(fds, int(f.Fd()))
		}
	}
	for i, f := range realPods {
		name := fmt.Sprintf("%spod (real node, %d of %d)", cfg.NetnsPrefix(), i+1, len(realPods))
		h, err := netlink.NewHandleAt(netns.NsHandle(f.Fd()), unix.NETLINK_ROUTE)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		errs = append(errs, checkLinksAndRoutes(cfg, h, name, nsPod, fds, allowed)...)
		h.Close()
	}
	for _, ns := range nss {
		h, err := handleIn(ns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, rest, _ := cutLabName(ns)
		kind := nsOther
		if strings.HasPrefix(rest, "pod.") {
			kind = nsPod
		} else if ns == cfg.UnderlayNetns() && cfg.Provider == "qemu" {
			kind = nsVMUnderlay
		}
		errs = append(errs, checkLinksAndRoutes(cfg, h, ns, kind, fds, allowed)...)
		h.Close()
	}
	return errors.Join(errs...)
}

// realPodNetns opens the network namespace of every process in the lab's
// real-node cgroups that is not one of the lab's named namespaces (known,
// as open descriptors): the pods' namespaces, each once.
func realPodNetns(cfg config.Config, known []int) []*os.File {
	seen := map[uint64]bool{}
	for _, fd := range known {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			seen[st.Ino] = true
		}
	}
	hs, err := sandbox.Hierarchies("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []*os.File
	for _, pid := range (sandbox.Cgroup{Hierarchies: hs, Path: realnode.LabCgroup(cfg.Name)}).Procs() {
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) != nil || seen[st.Ino] {
			f.Close()
			continue
		}
		seen[st.Ino] = true
		out = append(out, f)
	}
	return out
}

// CheckNodeIsolation is the check as a VM node runs it on itself: its own
// namespace, whose eth0 is the VM's network card on the underlay, and its pod
// namespaces (named with cfg's prefix).
func CheckNodeIsolation(cfg config.Config) error {
	nss, err := labns.List(cfg.NetnsPrefix())
	if err != nil {
		return err
	}
	root, err := os.Open("/proc/self/ns/net")
	if err != nil {
		return err
	}
	defer root.Close()
	fds := []int{int(root.Fd())}
	for _, other := range nss {
		if f, err := labns.Handle(other); err == nil {
			defer f.Close()
			fds = append(fds, int(f))
		}
	}
	allowed := allowedNets(cfg)
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	errs := checkLinksAndRoutes(cfg, h, "node "+cfg.Name, nsVMNode, fds, allowed)
	h.Close()
	for _, ns := range nss {
		h, err := handleIn(ns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, checkLinksAndRoutes(cfg, h, ns, nsPod, fds, allowed)...)
		h.Close()
	}
	return errors.Join(errs...)
}

type nsKind int

const (
	nsOther      nsKind = iota
	nsPod               // may have a default route through its pod gateway
	nsVMUnderlay        // the underlay of a qemu lab: VM taps on the bridge
	nsVMNode            // a VM's own namespace: eth0 is its network card
)

func allowedNets(cfg config.Config) []*net.IPNet {
	var out []*net.IPNet
	for _, s := range []string{cfg.Underlay, cfg.ClusterCIDR, cfg.ServiceCIDR, "127.0.0.0/8", "::1/128", "fe80::/10", "ff00::/8", "224.0.0.0/4"} {
		if _, n, err := net.ParseCIDR(s); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// checkLinksAndRoutes checks one namespace (h) given the descriptors of
// every namespace of the lab.
func checkLinksAndRoutes(cfg config.Config, h *netlink.Handle, ns string, kind nsKind, labFDs []int, allowed []*net.IPNet) []error {
	var errs []error
	isPod := kind == nsPod
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
	for _, fd := range labFDs {
		if id, err := h.GetNetNsIdByFd(fd); err == nil && id >= 0 {
			labIDs[id] = true
		}
	}
	for _, l := range links {
		switch l.Type() {
		case "device":
			if l.Attrs().Name != "lo" && !(kind == nsVMNode && l.Attrs().Name == "eth0") {
				errs = append(errs, fmt.Errorf("%s: physical device %s in a lab namespace", ns, l.Attrs().Name))
			}
		case "veth":
			if !labIDs[l.Attrs().NetNsID] {
				errs = append(errs, fmt.Errorf("%s: veth %s has its peer outside the lab (netns id %d)", ns, l.Attrs().Name, l.Attrs().NetNsID))
			}
		case "bridge", "vxlan", "dummy":
		case "tuntap":
			if kind != nsVMUnderlay || !strings.HasPrefix(l.Attrs().Name, "tap-node-") {
				errs = append(errs, fmt.Errorf("%s: unexpected tap %s", ns, l.Attrs().Name))
			}
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
