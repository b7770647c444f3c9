package cni

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/datapath/api"
)

// checkWired asserts the pod and node state ADD promises for res.
func (l *lab) checkWired(containerID, podNS string, res *current.Result, gwMAC string) {
	t := l.t
	t.Helper()
	host := HostVethName(containerID, "eth0")
	if len(res.Interfaces) != 2 || res.Interfaces[0].Name != host || res.Interfaces[0].Sandbox != "" ||
		res.Interfaces[1].Name != "eth0" || res.Interfaces[1].Sandbox != podNS {
		t.Fatalf("result interfaces: %v", res.Interfaces)
	}
	if len(res.IPs) != 1 || res.IPs[0].Interface == nil || *res.IPs[0].Interface != 1 ||
		res.IPs[0].Gateway.String() != testNode.Gateway {
		t.Fatalf("result ips: %v", res.IPs)
	}
	ip := res.IPs[0].Address
	if ones, _ := ip.Mask.Size(); ones != 32 || !strings.HasPrefix(ip.IP.String(), "10.250.1.") {
		t.Fatalf("address %s is not a /32 from %s", ip.String(), testNode.PodCIDR)
	}
	if len(res.Routes) != 1 || res.Routes[0].Dst.String() != "0.0.0.0/0" || res.Routes[0].GW.String() != testNode.Gateway {
		t.Fatalf("result routes: %v", res.Routes)
	}

	node, pod := nlAt(t, l.nodeNS), nlAt(t, podNS)
	hl, err := node.LinkByName(host)
	if err != nil {
		t.Fatalf("host veth %s: %v", host, err)
	}
	if hl.Attrs().Flags&net.FlagUp == 0 || hl.Attrs().MTU != testNode.MTU || hl.Attrs().HardwareAddr.String() != res.Interfaces[0].Mac {
		t.Fatalf("host veth %s: up=%v mtu=%d mac=%s", host, hl.Attrs().Flags&net.FlagUp != 0, hl.Attrs().MTU, hl.Attrs().HardwareAddr)
	}
	if addrs, _ := node.AddrList(hl, unix.AF_INET); len(addrs) != 0 {
		t.Fatalf("host veth has IPv4 addresses: %v", addrs)
	}
	if !hasRoute(node, hl.Attrs().Index, &ip, nil) {
		t.Fatalf("no host route %s dev %s", ip.String(), host)
	}
	pl, err := pod.LinkByName("eth0")
	if err != nil {
		t.Fatalf("pod eth0: %v", err)
	}
	if pl.Attrs().Flags&net.FlagUp == 0 || pl.Attrs().MTU != testNode.MTU || pl.Attrs().HardwareAddr.String() != res.Interfaces[1].Mac {
		t.Fatalf("pod eth0: %+v", pl.Attrs())
	}
	if gwMAC == "" {
		gwMAC = hl.Attrs().HardwareAddr.String()
	}
	var problems []string
	gw := net.ParseIP(testNode.Gateway)
	checkPod(pod, pl, addrOf(ip.IP), addrOf(gw), func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) })
	if len(problems) > 0 {
		t.Fatalf("pod side: %v", problems)
	}
	neighs, _ := pod.NeighList(pl.Attrs().Index, unix.AF_INET)
	for _, n := range neighs {
		if n.IP.Equal(gw) && (n.HardwareAddr.String() != gwMAC || n.State != netlink.NUD_PERMANENT) {
			t.Fatalf("gateway neighbour %s state %#x, want %s permanent", n.HardwareAddr, n.State, gwMAC)
		}
	}
	ep, ok := l.agent.endpoint(containerID)
	want := api.Endpoint{ContainerID: containerID, IfName: "eth0", Netns: podNS, PodNamespace: "ns1",
		PodName: "pod-" + containerID, PodUID: "uid-" + containerID, IP: ip.IP.String(),
		PodMAC: pl.Attrs().HardwareAddr.String(), HostIfName: host, HostIfIndex: hl.Attrs().Index, HostMAC: hl.Attrs().HardwareAddr.String()}
	if !ok || ep != want {
		t.Fatalf("agent endpoint = %+v (%v), want %+v", ep, ok, want)
	}
}

// checkGone asserts nothing of containerID is left on the node or in the pod.
func (l *lab) checkGone(containerID, podNS string) {
	t := l.t
	t.Helper()
	if _, err := nlAt(t, l.nodeNS).LinkByName(HostVethName(containerID, "eth0")); err == nil {
		t.Fatalf("host veth of %s still exists", containerID)
	}
	if podNS != "" {
		if _, err := nlAt(t, podNS).LinkByName("eth0"); err == nil {
			t.Fatalf("pod eth0 of %s still exists", containerID)
		}
	}
	routes, _ := nlAt(t, l.nodeNS).RouteList(nil, unix.AF_INET)
	for _, r := range routes {
		if r.Dst != nil && strings.HasPrefix(r.Dst.String(), "10.250.") {
			t.Fatalf("node route left: %v", r)
		}
	}
	if files := l.ipFiles(); len(files) != 0 {
		t.Fatalf("IPAM files left: %v", files)
	}
	if _, ok := l.agent.endpoint(containerID); ok {
		t.Fatalf("agent still has endpoint %s", containerID)
	}
}

func addrOf(ip net.IP) netip.Addr { a, _ := netip.AddrFromSlice(ip.To4()); return a }

func TestAddCheckDel(t *testing.T) {
	l := newLab(t)
	podNS := newNetns(t, "pod")
	res := l.add("c1", podNS)
	l.checkWired("c1", podNS, res, "")
	if !l.agent.called("PUT c1") {
		t.Fatal("agent got no PUT")
	}

	prev, _ := json.Marshal(res)
	var prevMap map[string]any
	_ = json.Unmarshal(prev, &prevMap)
	l.mustOK(l.exec("CHECK", "c1", podNS, "eth0", map[string]any{"prevResult": prevMap}), "CHECK")

	// A second ADD of the same attachment gets the same address.
	again := l.add("c1", podNS)
	if again.IPs[0].Address.String() != res.IPs[0].Address.String() {
		t.Fatalf("second ADD got %s, first %s", again.IPs[0].Address.String(), res.IPs[0].Address.String())
	}
	l.checkWired("c1", podNS, again, "")
	prev, _ = json.Marshal(again)
	_ = json.Unmarshal(prev, &prevMap)

	// CHECK names what is missing.
	pod := nlAt(t, podNS)
	pl, _ := pod.LinkByName("eth0")
	if err := pod.RouteDel(defaultRoute(pl.Attrs().Index, addrOf(net.ParseIP(testNode.Gateway)))); err != nil {
		t.Fatal(err)
	}
	wantCode(t, l.exec("CHECK", "c1", podNS, "eth0", map[string]any{"prevResult": prevMap}), types.ErrIOFailure, "default route")

	l.mustOK(l.exec("DEL", "c1", podNS, "eth0", nil), "DEL")
	if !l.agent.called("DELETE c1") {
		t.Fatal("agent got no DELETE")
	}
	l.checkGone("c1", podNS)
	l.mustOK(l.exec("DEL", "c1", podNS, "eth0", nil), "second DEL")
	l.mustOK(l.exec("DEL", "c1", "", "eth0", nil), "DEL without netns")
	wantCode(t, l.exec("CHECK", "c1", podNS, "eth0", map[string]any{"prevResult": prevMap}), types.ErrIOFailure, "host veth")
}

func TestAddGatewayMACAndMTU(t *testing.T) {
	l := newLab(t)
	l.agent.set(func(a *fakeAgent) { a.node.GatewayMAC = "02:00:0a:fa:01:01" })
	l.conf["mtu"] = 1450 // same as the agent's: checkWired compares against it
	podNS := newNetns(t, "pod")
	res := l.add("c1", podNS)
	l.checkWired("c1", podNS, res, "02:00:0a:fa:01:01")
	l.mustOK(l.exec("DEL", "c1", podNS, "eth0", nil), "DEL")
	l.checkGone("c1", podNS)
}

func TestAddFailsClosed(t *testing.T) {
	l := newLab(t)
	podNS := newNetns(t, "pod")

	l.agent.set(func(a *fakeAgent) { a.node.Ready = false })
	wantCode(t, l.exec("ADD", "c1", podNS, "eth0", nil), types.ErrTryAgainLater, "not ready")
	l.checkGone("c1", podNS)

	l.agent.set(func(a *fakeAgent) { a.node.Ready = true; a.putStatus = 500 })
	wantCode(t, l.exec("ADD", "c1", podNS, "eth0", nil), types.ErrTryAgainLater, "register endpoint")
	if !l.agent.called("PUT c1") || !l.agent.called("DELETE c1") {
		t.Fatalf("agent calls: %v", l.agent.calls)
	}
	l.checkGone("c1", podNS)

	l.agent.stop()
	r := l.exec("ADD", "c1", podNS, "eth0", nil)
	wantCode(t, r, types.ErrTryAgainLater, "unreachable at "+l.agent.socket)
	if n := strings.Count(r.err.Error(), "unreachable at "+l.agent.socket); n != 1 {
		t.Fatalf("the error names the unreachable agent %d times, want once: %s", n, r.err)
	}
	if !strings.Contains(r.err.Details, "connect") {
		t.Fatalf("the error's details do not give the cause: %q", r.err.Details)
	}
	l.checkGone("c1", podNS)

	// DEL with the agent down still cleans up and succeeds, saying so.
	l.mustOK(l.exec("DEL", "c1", podNS, "eth0", nil), "DEL with agent down")
}

func TestDelWithAgentDownCleansLocalState(t *testing.T) {
	l := newLab(t)
	podNS := newNetns(t, "pod")
	l.add("c1", podNS)
	l.agent.stop()
	r := l.exec("DEL", "c1", podNS, "eth0", nil)
	l.mustOK(r, "DEL")
	if !strings.Contains(string(r.stderr), "unreachable") {
		t.Fatalf("DEL stderr does not mention the unreachable agent: %q", r.stderr)
	}
	l.agent.endpoints = nil // the fake never heard the DELETE
	l.checkGone("c1", podNS)
}

func TestBadEnvironment(t *testing.T) {
	l := newLab(t)
	podNS := newNetns(t, "pod")
	wantCode(t, l.exec("ADD", "c1", "/tmp", "eth0", nil), types.ErrInvalidEnvironmentVariables, "CNI_NETNS")
	wantCode(t, l.exec("ADD", "c1", "/run/netns/cnilab.cnitest.nonexistent", "eth0", nil), types.ErrUnknownContainer, "does not exist")
	wantCode(t, l.exec("ADD", "c1", l.nodeNS, "eth0", nil), types.ErrInvalidEnvironmentVariables, "own")
	wantCode(t, l.exec("ADD", "c1", podNS, "eth0", map[string]any{"vlan": 3}), types.ErrUnsupportedField, "vlan")
	wantCode(t, l.exec("CHECK", "c1", "/run/netns/cnilab.cnitest.nonexistent", "eth0",
		map[string]any{"prevResult": map[string]any{"cniVersion": "1.1.0"}}), types.ErrUnknownContainer, "does not exist")
	l.checkGone("c1", podNS)
}

func TestAddExhausted(t *testing.T) {
	l := newLab(t)
	l.agent.set(func(a *fakeAgent) { a.node.PodCIDR, a.node.Gateway = "10.250.1.0/30", "10.250.1.1" })
	ns1, ns2 := newNetns(t, "pod"), newNetns(t, "pod")
	if got := l.add("c1", ns1).IPs[0].Address.String(); got != "10.250.1.2/32" {
		t.Fatalf("only address of a /30: got %s", got)
	}
	wantCode(t, l.exec("ADD", "c2", ns2, "eth0", nil), ErrNoFreeAddress, "10.250.1.0/30")
	if _, err := nlAt(t, l.nodeNS).LinkByName(HostVethName("c2", "eth0")); err == nil {
		t.Fatal("failed ADD left its host veth")
	}
	l.mustOK(l.exec("DEL", "c1", ns1, "eth0", nil), "DEL")
	l.checkGone("c1", ns1)
}

// TestAddFailsMidway: the pod already has a foreign eth0, so ADD fails after
// the address is reserved; it must release it and leave the foreign link be.
func TestAddFailsMidway(t *testing.T) {
	l := newLab(t)
	podNS := newNetns(t, "pod")
	pod := nlAt(t, podNS)
	if err := pod.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "foreign"}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, l.exec("ADD", "c1", podNS, "eth0", nil), types.ErrIOFailure, "already exists")
	l.checkGone("c1", "")
	if _, err := pod.LinkByName("eth0"); err != nil {
		t.Fatalf("the pod's own eth0 was removed: %v", err)
	}
	if l.agent.called("PUT c1") {
		t.Fatal("a failed ADD registered the endpoint")
	}
}

func TestConcurrentAdds(t *testing.T) {
	l := newLab(t)
	const n = 50 // the acceptance check: 50 concurrent ADDs on one node
	pods := make([]string, n)
	for i := range pods {
		pods[i] = newNetns(t, "pod")
	}
	ips := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for i := range n {
		wg.Go(func() {
			r := l.exec("ADD", fmt.Sprint("c", i), pods[i], "eth0", nil)
			if r.err != nil {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("c%d: %v", i, r.err))
				mu.Unlock()
				return
			}
			var res current.Result
			if err := json.Unmarshal(r.stdout, &res); err == nil && len(res.IPs) == 1 {
				ips[i] = res.IPs[0].Address.IP.String()
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("ADD failures: %v", failures)
	}
	seen := map[string]int{}
	for i, ip := range ips {
		if j, dup := seen[ip]; dup || ip == "" {
			t.Fatalf("c%d and c%d got %q", j, i, ip)
		}
		seen[ip] = i
	}
	for i := range n {
		l.mustOK(l.exec("DEL", fmt.Sprint("c", i), pods[i], "eth0", nil), "DEL")
	}
	l.checkGone("c0", "")
}

func TestStatus(t *testing.T) {
	l := newLab(t)
	l.mustOK(l.exec("STATUS", "", "", "", nil), "STATUS with a ready agent")
	l.agent.set(func(a *fakeAgent) { a.node.Ready = false })
	wantCode(t, l.exec("STATUS", "", "", "", nil), types.ErrPluginNotAvailable, "plugin not available")
	l.agent.stop()
	wantCode(t, l.exec("STATUS", "", "", "", nil), types.ErrPluginNotAvailable, "unreachable")
}

func TestGC(t *testing.T) {
	l := newLab(t)
	keepNS, staleNS := newNetns(t, "pod"), newNetns(t, "pod")
	keep := l.add("keep", keepNS)
	l.add("stale", staleNS)
	valid := []map[string]string{{"containerID": "keep", "ifname": "eth0"}}
	l.mustOK(l.exec("GC", "", "", "", map[string]any{"cni.dev/valid-attachments": valid}), "GC")
	if !l.agent.called("DELETE stale") || l.agent.called("DELETE keep") {
		t.Fatalf("agent calls: %v", l.agent.calls)
	}
	if _, err := nlAt(t, l.nodeNS).LinkByName(HostVethName("stale", "eth0")); err == nil {
		t.Fatal("stale host veth survived GC")
	}
	files := l.ipFiles()
	if len(files) != 1 || files[0] != keep.IPs[0].Address.IP.String() {
		t.Fatalf("IPAM after GC: %v", files)
	}
	l.checkWired("keep", keepNS, keep, "")

	// A host veth whose reservation is gone is still found, by its alias.
	orphanNS := newNetns(t, "pod")
	l.add("orphan", orphanNS)
	for _, f := range l.ipFiles() {
		if f != keep.IPs[0].Address.IP.String() {
			if err := os.Remove(filepath.Join(l.ipamDir, "10.250.1.0_24", f)); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.mustOK(l.exec("GC", "", "", "", map[string]any{"cni.dev/valid-attachments": valid}), "GC")
	if _, err := nlAt(t, l.nodeNS).LinkByName(HostVethName("orphan", "eth0")); err == nil {
		t.Fatal("orphan host veth survived GC")
	}
	l.checkWired("keep", keepNS, keep, "")
	l.mustOK(l.exec("DEL", "keep", keepNS, "eth0", nil), "DEL")
	l.checkGone("keep", keepNS)
}

// TestPodToPodTCP proves the wiring alone (static gateway neighbour, /32
// routes, forwarding in the node) carries traffic between two pods through the
// node namespace, without any eBPF program.
func TestPodToPodTCP(t *testing.T) {
	l := newLab(t)
	nsA, nsB := newNetns(t, "pod"), newNetns(t, "pod")
	// Strict reverse-path filtering everywhere: the wiring must not rely on it
	// being off (distributions set 1 or 2).
	for _, ns := range []string{l.nodeNS, nsA, nsB} {
		if err := inNetns(ns, func() error {
			for _, k := range []string{"all", "default"} {
				if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+k+"/rp_filter", []byte("1"), 0o644); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatalf("set rp_filter in %s: %v", ns, err)
		}
	}
	resA, resB := l.add("a", nsA), l.add("b", nsB)
	ipA, ipB := resA.IPs[0].Address.IP.String(), resB.IPs[0].Address.IP.String()
	for _, args := range [][]string{{"-n", nsName(nsA), "-4", "route"}, {"-n", nsName(nsA), "neigh"}, {"-n", nsName(l.nodeNS), "-4", "route"}} {
		out, _ := exec.Command("ip", args...).CombinedOutput()
		t.Logf("ip %s:\n%s", strings.Join(args, " "), out)
	}

	var ln net.Listener
	if err := inNetns(nsB, func() (err error) { ln, err = net.Listen("tcp4", net.JoinHostPort(ipB, "0")); return err }); err != nil {
		t.Fatalf("listen in pod b: %v", err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		_, _ = c.Write([]byte("pong"))
		got <- c.RemoteAddr().(*net.TCPAddr).IP.String() + " " + string(buf[:n])
	}()
	var reply string
	err := inNetns(nsA, func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		reply = string(buf[:n])
		return err
	})
	if err != nil {
		t.Fatalf("dial %s from pod a (%s): %v", ln.Addr(), ipA, err)
	}
	select {
	case s := <-got:
		if s != ipA+" ping" || reply != "pong" {
			t.Fatalf("server saw %q, client got %q; want %q / pong", s, reply, ipA+" ping")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server saw nothing")
	}
	for _, args := range [][]string{{"-n", nsName(l.nodeNS), "neigh"}, {"-n", nsName(nsB), "neigh"}, {"-n", nsName(l.nodeNS), "addr"}} {
		out, _ := exec.Command("ip", args...).CombinedOutput()
		t.Logf("ip %s:\n%s", strings.Join(args, " "), out)
	}
	l.mustOK(l.exec("DEL", "a", nsA, "eth0", nil), "DEL a")
	l.mustOK(l.exec("DEL", "b", nsB, "eth0", nil), "DEL b")
}

func nsName(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }
