package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// bootConfig is what init takes from the kernel command line.
type bootConfig struct {
	// IP is cnilab.ip: the address and prefix length of eth0.
	IP netip.Prefix
	// Hostname is cnilab.hostname.
	Hostname string
	// ServiceRoute is cnilab.svc: the cluster's Service CIDR, routed out of
	// eth0 so that the node's own connections to a ClusterIP get as far as
	// kube-proxy's DNAT (which happens after the route lookup).
	ServiceRoute netip.Prefix
}

// splitCmdline splits a kernel command line into parameters the way the
// kernel does: on spaces, except inside double quotes, which are removed.
func splitCmdline(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// parseCmdline reads cnilab.ip and cnilab.hostname from a kernel command
// line. Invalid values are errors; the valid part of the config is still
// returned. The last occurrence of a parameter wins, as in the kernel.
func parseCmdline(s string) (bootConfig, error) {
	var cfg bootConfig
	var errs []error
	for _, p := range splitCmdline(s) {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "cnilab.ip":
			pfx, err := netip.ParsePrefix(v)
			if err != nil || !pfx.Addr().Is4() && !pfx.Addr().Is6() || pfx.Addr().IsUnspecified() {
				errs = append(errs, fmt.Errorf("kernel command line: cnilab.ip=%s: want ADDRESS/PREFIXLEN such as 172.30.0.11/24", v))
				continue
			}
			cfg.IP = pfx
		case "cnilab.svc":
			pfx, err := netip.ParsePrefix(v)
			if err != nil || !pfx.Addr().Is4() || pfx != pfx.Masked() {
				errs = append(errs, fmt.Errorf("kernel command line: cnilab.svc=%s: want an IPv4 network such as 10.96.0.0/16", v))
				continue
			}
			cfg.ServiceRoute = pfx
		case "cnilab.hostname":
			if err := validHostname(v); err != nil {
				errs = append(errs, fmt.Errorf("kernel command line: cnilab.hostname=%s: %w", v, err))
				continue
			}
			cfg.Hostname = v
		}
	}
	return cfg, errors.Join(errs...)
}

// validHostname checks a host name: dot-separated labels of letters, digits
// and dashes, not starting or ending with a dash, at most 64 bytes.
func validHostname(h string) error {
	if h == "" || len(h) > 64 {
		return errors.New("want 1 to 64 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("empty label, or a label starting or ending with '-'")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("invalid character %q", r)
			}
		}
	}
	return nil
}

// linkWait is how long init waits for an ethernet link to appear.
const linkWait = 3 * time.Second

// setupNetwork brings lo up and, when cnilab.ip is set, gives the first
// ethernet link the address, names it eth0 and brings it up. It adds no
// route but the Service CIDR's (cnilab.svc) through eth0: the other routes
// are the ones the kernel derives from the address.
func setupNetwork(cfg bootConfig) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("network: lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("network: bring lo up: %w", err)
	}
	if !cfg.IP.IsValid() {
		logf("network: no cnilab.ip on the kernel command line; only lo is up")
		return nil
	}
	var link netlink.Link
	deadline := time.Now().Add(linkWait)
	for {
		link, err = firstEthernet()
		if err != nil {
			return fmt.Errorf("network: %w", err)
		}
		if link != nil {
			break
		}
		if !hasNetworkController("/sys/bus/pci/devices") {
			return fmt.Errorf("network: the machine has no network controller (QEMU given no NIC?); cnilab.ip=%s not configured", cfg.IP)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("network: no ethernet link appeared within %v (is its driver in /etc/cnilab/modules?); cnilab.ip=%s not configured", linkWait, cfg.IP)
		}
		time.Sleep(20 * time.Millisecond)
	}
	name := link.Attrs().Name
	if name != "eth0" {
		if err := netlink.LinkSetDown(link); err != nil {
			return fmt.Errorf("network: bring %s down to rename it: %w", name, err)
		}
		if err := netlink.LinkSetName(link, "eth0"); err != nil {
			return fmt.Errorf("network: rename %s to eth0: %w", name, err)
		}
		if link, err = netlink.LinkByIndex(link.Attrs().Index); err != nil {
			return fmt.Errorf("network: eth0: %w", err)
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: cfg.IP.Addr().AsSlice(), Mask: net.CIDRMask(cfg.IP.Bits(), cfg.IP.Addr().BitLen())}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("network: add %s to eth0: %w", cfg.IP, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("network: bring eth0 up: %w", err)
	}
	if cfg.ServiceRoute.IsValid() {
		dst := &net.IPNet{IP: cfg.ServiceRoute.Addr().AsSlice(), Mask: net.CIDRMask(cfg.ServiceRoute.Bits(), 32)}
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst, Src: cfg.IP.Addr().AsSlice(), Scope: netlink.SCOPE_LINK}); err != nil {
			return fmt.Errorf("network: route %s via eth0: %w", cfg.ServiceRoute, err)
		}
	}
	renamed := ""
	if name != "eth0" {
		renamed = " (was " + name + ")"
	}
	logf("network: eth0%s %s up, mac %s", renamed, cfg.IP, link.Attrs().HardwareAddr)
	return nil
}

// hasNetworkController says whether a PCI device of the network controller
// class (0x02) is present under sysDir (/sys/bus/pci/devices), so init waits
// for an ethernet link only when there is hardware for one.
func hasNetworkController(sysDir string) bool {
	classes, _ := filepath.Glob(filepath.Join(sysDir, "*", "class"))
	for _, c := range classes {
		b, err := os.ReadFile(c)
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), "0x02") {
			return true
		}
	}
	return false
}

// firstEthernet returns the ethernet device with the lowest index, or nil.
func firstEthernet() (netlink.Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Attrs().Index < links[j].Attrs().Index })
	for _, l := range links {
		a := l.Attrs()
		if l.Type() == "device" && a.EncapType == "ether" && a.Flags&net.FlagLoopback == 0 {
			return l, nil
		}
	}
	return nil, nil
}

// setupHostname sets the host name from cnilab.hostname and writes
// /etc/hostname and /etc/hosts.
func setupHostname(cfg bootConfig) error {
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return fmt.Errorf("set host name %s: %w", cfg.Hostname, err)
		}
		if err := os.WriteFile("/etc/hostname", []byte(cfg.Hostname+"\n"), 0o644); err != nil {
			return fmt.Errorf("write /etc/hostname: %w", err)
		}
		if cfg.IP.IsValid() {
			hosts += cfg.IP.Addr().String() + "\t" + cfg.Hostname + "\n"
		}
		logf("host name %s", cfg.Hostname)
	}
	if err := os.WriteFile("/etc/hosts", []byte(hosts), 0o644); err != nil {
		return fmt.Errorf("write /etc/hosts: %w", err)
	}
	return nil
}
