package cni

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/datapath/ipam"
)

// cmdCheck verifies that what prevResult describes is still in place: the
// host veth and its route, the pod interface with its /32, the gateway route
// and neighbour, and the address reservation. It lists everything missing.
func cmdCheck(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if err := validateArgs(args, true); err != nil {
		return err
	}
	podNS, podNL, err := openNetns(args.Netns)
	if err != nil {
		return err
	}
	defer podNS.Close()
	defer podNL.Close()
	if conf.RawPrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "CHECK: prevResult is missing", "")
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "CHECK: parse prevResult: "+err.Error(), "")
	}
	prev, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "CHECK: convert prevResult: "+err.Error(), "")
	}
	ip, gw, err := expectedAddress(prev, args.IfName)
	if err != nil {
		return err
	}
	nodeNL, err := nodeHandle()
	if err != nil {
		return err
	}
	defer nodeNL.Close()

	var missing []string
	miss := func(format string, a ...any) { missing = append(missing, fmt.Sprintf(format, a...)) }
	hostName := HostVethName(args.ContainerID, args.IfName)
	if host, err := nodeNL.LinkByName(hostName); err != nil {
		miss("host veth %s: %v", hostName, err)
	} else {
		if host.Attrs().Flags&net.FlagUp == 0 {
			miss("host veth %s is down", hostName)
		}
		if !hasRoute(nodeNL, host.Attrs().Index, host32(ip), nil) {
			miss("host route %s/32 dev %s", ip, hostName)
		}
	}
	if pod, err := podNL.LinkByName(args.IfName); err != nil {
		miss("pod interface %s in %s: %v", args.IfName, args.Netns, err)
	} else {
		checkPod(podNL, pod, ip, gw, miss)
	}
	if a, err := ipam.Ranges(conf.IPAMDataDir); err == nil {
		owned := false
		for _, r := range a {
			if got, ok, _ := r.Lookup(args.ContainerID, args.IfName); ok && got == ip {
				owned = true
			}
		}
		if !owned {
			miss("address %s is not reserved for %s/%s in %s", ip, args.ContainerID, args.IfName, conf.IPAMDataDir)
		}
	}
	if len(missing) > 0 {
		return types.NewError(types.ErrIOFailure, "CHECK failed: missing or wrong: "+strings.Join(missing, "; "), "")
	}
	return nil
}

// expectedAddress finds the pod interface's IPv4 /32 and gateway in prevResult.
func expectedAddress(prev *current.Result, ifname string) (ip, gw netip.Addr, err error) {
	for _, c := range prev.IPs {
		if c.Interface == nil || *c.Interface < 0 || *c.Interface >= len(prev.Interfaces) {
			continue
		}
		itf := prev.Interfaces[*c.Interface]
		if itf.Name != ifname || itf.Sandbox == "" {
			continue
		}
		ip, ok1 := netip.AddrFromSlice(c.Address.IP.To4())
		gw, ok2 := netip.AddrFromSlice(c.Gateway.To4())
		if ok1 && ok2 {
			return ip, gw, nil
		}
	}
	return ip, gw, types.NewError(types.ErrInvalidNetworkConfig,
		fmt.Sprintf("CHECK: prevResult has no IPv4 address with a gateway for interface %s", ifname), "")
}

// checkPod records what is wrong with the pod end.
func checkPod(h *netlink.Handle, l netlink.Link, ip, gw netip.Addr, miss func(string, ...any)) {
	name := l.Attrs().Name
	if l.Attrs().Flags&net.FlagUp == 0 {
		miss("pod interface %s is down", name)
	}
	addrs, err := h.AddrList(l, unix.AF_INET)
	found := false
	for _, a := range addrs {
		if ones, _ := a.Mask.Size(); a.IP.Equal(net.IP(ip.AsSlice())) && ones == 32 {
			found = true
		}
	}
	if err != nil || !found {
		miss("address %s/32 on pod interface %s", ip, name)
	}
	if !hasRoute(h, l.Attrs().Index, host32(gw), nil) {
		miss("pod route %s/32 dev %s", gw, name)
	}
	if !hasRoute(h, l.Attrs().Index, nil, net.IP(gw.AsSlice())) {
		miss("pod default route via %s dev %s", gw, name)
	}
	neighs, err := h.NeighList(l.Attrs().Index, unix.AF_INET)
	found = false
	for _, n := range neighs {
		if n.IP.Equal(net.IP(gw.AsSlice())) && n.State&netlink.NUD_PERMANENT != 0 {
			found = true
		}
	}
	if err != nil || !found {
		miss("permanent neighbour %s on pod interface %s", gw, name)
	}
}

// hasRoute reports whether the main table has a route through linkIndex to dst
// (nil: the default route) via gw (nil: no gateway).
func hasRoute(h *netlink.Handle, linkIndex int, dst *net.IPNet, gw net.IP) bool {
	routes, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{LinkIndex: linkIndex}, netlink.RT_FILTER_OIF)
	if err != nil {
		return false
	}
	for _, r := range routes {
		isDefault := r.Dst == nil || (r.Dst.IP.IsUnspecified() && func() bool { o, _ := r.Dst.Mask.Size(); return o == 0 }())
		dstOK := (dst == nil && isDefault) || (dst != nil && r.Dst != nil && r.Dst.String() == dst.String())
		gwOK := (gw == nil && r.Gw == nil) || (gw != nil && r.Gw.Equal(gw))
		if dstOK && gwOK {
			return true
		}
	}
	return false
}
