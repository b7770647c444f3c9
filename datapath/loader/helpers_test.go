package loader

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads eBPF programs, mounts bpffs, creates network namespaces")
	}
}

// kernelAtLeast compares the probed kernel release with major.minor (tests
// only: to tell "missing, skip" from "must be there, fail").
func kernelAtLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return ma > major || ma == major && mi >= minor
}

// requireFeatures skips when the kernel lacks what a test needs, but fails on
// kernels (6.6+) that must have it.
func requireFeatures(t *testing.T, tcx, peer bool) Features {
	t.Helper()
	f := ProbeFeatures()
	var missing []string
	if tcx && !f.TCX {
		missing = append(missing, "TCX")
	}
	if peer && !f.RedirectPeer {
		missing = append(missing, "bpf_redirect_peer")
	}
	if len(missing) > 0 {
		if kernelAtLeast(f.Kernel, 6, 6) {
			t.Fatalf("kernel %s (6.6+) must have %v, probe says no: %v", f.Kernel, missing, f)
		}
		t.Skipf("kernel %s lacks %v", f.Kernel, missing)
	}
	return f
}

// bpffsDir returns a fresh directory for pins; Load mounts a bpffs on it.
// Cleanup unpins and unmounts.
func bpffsDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bpf")
	t.Cleanup(func() {
		if err := Unpin(dir); err != nil {
			t.Errorf("unpin: %v", err)
		}
		if ok, _ := isBPFFS(dir); ok {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
			}
		}
	})
	return dir
}

func load(t testing.TB, opts Options) *Datapath {
	t.Helper()
	d, err := Load(opts)
	if err != nil {
		t.Fatalf("Load(%+v): %+v", opts, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

var nsSeq atomic.Int32

// newNS creates a named network namespace cnilab.ldtest<pid>.<n>.<suffix>,
// deleted in Cleanup.
func newNS(t *testing.T, suffix string) netns.NsHandle {
	t.Helper()
	name := fmt.Sprintf("cnilab.ldtest%d.%d.%s", os.Getpid(), nsSeq.Add(1), suffix)
	var h netns.NsHandle
	err := onThrowawayThread(func() (err error) {
		h, err = netns.NewNamed(name)
		return err
	})
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	t.Cleanup(func() {
		h.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	if err := inNS(h, func() error { return linkUp("lo") }); err != nil {
		t.Fatal(err)
	}
	return h
}

// onThrowawayThread runs fn on a locked OS thread that exits afterwards (for
// calls that switch the thread's namespace and do not switch back).
func onThrowawayThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		errc <- fn()
	}()
	return <-errc
}

// inNS runs fn on an OS thread switched into ns.
func inNS(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread() // else the thread is discarded
		}
		errc <- err
	}()
	return <-errc
}

func linkUp(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

func sysctl(ns netns.NsHandle, key, val string) error {
	return inNS(ns, func() error {
		return os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(val), 0o644)
	})
}

func handleAt(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// node is a network namespace standing for a Kubernetes node.
type node struct {
	ns netns.NsHandle
	h  *netlink.Handle
}

func newNode(t *testing.T, name string) *node {
	t.Helper()
	n := &node{ns: newNS(t, name)}
	n.h = handleAt(t, n.ns)
	if err := sysctl(n.ns, "net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	return n
}

// do runs fn in the node's namespace (the agent's view: attach calls).
func (n *node) do(t *testing.T, fn func() error) {
	t.Helper()
	if err := inNS(n.ns, fn); err != nil {
		t.Fatal(err)
	}
}

// pod is a pod namespace wired to a node as the CNI plugin would.
type pod struct {
	ns        netns.NsHandle
	ip        netip.Addr
	mac       net.HardwareAddr
	hostIf    string
	hostIdx   int
	hostMAC   net.HardwareAddr
	nodeRoute *netlink.Route
}

func (p *pod) endpoint() EndpointInfo {
	return EndpointInfo{Ifindex: p.hostIdx, PodMAC: p.mac, HostMAC: p.hostMAC}
}

// addPod creates a pod namespace with eth0 (ip/32, default via gw through a
// permanent neighbour entry for the host veth's MAC) and the host side
// hostIf in the node with a /32 route to the pod.
func addPod(t *testing.T, n *node, name, hostIf string, ip, gw netip.Addr, mtu int) *pod {
	t.Helper()
	p := &pod{ns: newNS(t, name), ip: ip, hostIf: hostIf}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostIf, MTU: mtu},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(int(p.ns)),
		PeerMTU:       uint32(mtu),
	}
	if err := n.h.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s: %v", hostIf, err)
	}
	host, err := n.h.LinkByName(hostIf)
	if err != nil {
		t.Fatal(err)
	}
	p.hostIdx, p.hostMAC = host.Attrs().Index, host.Attrs().HardwareAddr
	if err := n.h.LinkSetUp(host); err != nil {
		t.Fatal(err)
	}

	ph := handleAt(t, p.ns)
	eth0, err := ph.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	p.mac = eth0.Attrs().HardwareAddr
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("pod %s: %s: %v", name, what, err)
		}
	}
	must("eth0 up", ph.LinkSetUp(eth0))
	must("addr", ph.AddrAdd(eth0, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(ip, 32))}))
	must("gateway route", ph.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: ipNet(netip.PrefixFrom(gw, 32)), Scope: netlink.SCOPE_LINK}))
	must("default route", ph.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.IP(gw.AsSlice())}))
	must("gateway neighbour", ph.NeighAdd(&netlink.Neigh{
		LinkIndex: eth0.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
		IP: net.IP(gw.AsSlice()), HardwareAddr: p.hostMAC,
	}))
	p.nodeRoute = &netlink.Route{LinkIndex: p.hostIdx, Dst: ipNet(netip.PrefixFrom(ip, 32)), Scope: netlink.SCOPE_LINK}
	if err := n.h.RouteAdd(p.nodeRoute); err != nil {
		t.Fatalf("node route to %s: %v", ip, err)
	}
	return p
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// serveEcho listens on addr inside ns and echoes every connection.
func serveEcho(t *testing.T, ns netns.NsHandle, addr string) {
	t.Helper()
	var ln net.Listener
	if err := inNS(ns, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
}

// dial connects from inside ns.
func dial(ns netns.NsHandle, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNS(ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	})
	return c, err
}

var echoSeq atomic.Int64

// echo sends a line over c and expects it back.
func echo(c net.Conn, timeout time.Duration) error {
	msg := fmt.Sprintf("cnilab %d\n", echoSeq.Add(1))
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echo: got %q, want %q", buf, msg)
	}
	return nil
}

// connect opens a connection from ns to addr and does one echo.
func connect(ns netns.NsHandle, addr string, timeout time.Duration) error {
	c, err := dial(ns, addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	return echo(c, timeout)
}

func mustConnect(t *testing.T, ns netns.NsHandle, addr, what string) {
	t.Helper()
	if err := connect(ns, addr, 3*time.Second); err != nil {
		t.Fatalf("%s: connect %s: %v", what, addr, err)
	}
}

func mustNotConnect(t *testing.T, ns netns.NsHandle, addr, what string) {
	t.Helper()
	err := connect(ns, addr, time.Second)
	switch {
	case err == nil:
		t.Fatalf("%s: connect %s succeeded, want failure", what, addr)
	case !isNetErr(err):
		t.Fatalf("%s: connect %s: unexpected error %v", what, addr, err)
	}
	t.Logf("%s: fails as it should: %v", what, err)
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, unix.EHOSTUNREACH) || errors.Is(err, unix.ENETUNREACH) ||
		errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, io.EOF)
}

// mustBulk pushes n bytes through an echo connection and checks them (large
// segments: GSO, checksum offload, MTU).
func mustBulk(t *testing.T, ns netns.NsHandle, addr string, n int) {
	t.Helper()
	c, err := dial(ns, addr, 3*time.Second)
	if err != nil {
		t.Fatalf("bulk: dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*7 + i>>8)
	}
	go func() { c.Write(data) }()
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("bulk %s: %v", addr, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("bulk %s: data corrupted", addr)
	}
}

// sendFrame transmits a raw Ethernet frame on ifindex inside ns.
func sendFrame(ns netns.NsHandle, ifindex int, frame []byte) error {
	return inNS(ns, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrLinklayer{Ifindex: ifindex, Halen: 6}
		copy(sa.Addr[:], frame[:6])
		return unix.Sendto(fd, frame, 0, sa)
	})
}

// ipInHdrErrors reads Ip InHdrErrors of ns (the stack's count of IPv4
// packets too short or malformed to parse).
func ipInHdrErrors(ns netns.NsHandle) (int, error) {
	var n int
	err := inNS(ns, func() error {
		b, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		var names []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != "Ip:" {
				continue
			}
			if names == nil {
				names = f
				continue
			}
			for i, name := range names {
				if name == "InHdrErrors" && i < len(f) {
					n, err = strconv.Atoi(f[i])
					return err
				}
			}
		}
		return errors.New("no Ip InHdrErrors in snmp")
	})
	return n, err
}
