package netns

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/cnilab/cnilab/lab/config"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
)

// The isolation check must catch a namespace that could route out: a
// default route and a route to a range that is not the lab's. No packet is
// sent; the routes only exist inside a namespace the test made.
func TestCheckIsolationCatchesRoutesOut(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	cfg := config.Default()
	cfg.Name = fmt.Sprintf("isotest%d", os.Getpid()%100000)
	ns := cfg.NodeNetns(1)
	if err := labns.Create(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = labns.Delete(ns) })
	if err := CheckIsolation(cfg); err != nil {
		t.Fatalf("a namespace with only lo is isolated, got: %v", err)
	}
	h, err := handleIn(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	d := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "out0"}, PeerName: "out1"}
	if err := h.LinkAdd(d); err != nil {
		t.Fatal(err)
	}
	_, doc, _ := net.ParseCIDR("192.0.2.1/24") // TEST-NET-1, never routed
	doc.IP = net.ParseIP("192.0.2.1")
	if err := h.AddrAdd(d, &netlink.Addr{IPNet: doc}); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(d); err != nil {
		t.Fatal(err)
	}
	if err := h.RouteAdd(&netlink.Route{Gw: net.ParseIP("192.0.2.254")}); err != nil {
		t.Fatal(err)
	}
	err = CheckIsolation(cfg)
	if err == nil {
		t.Fatal("isolation check passed a namespace with a default route")
	}
	for _, want := range []string{"default route", "route to 192.0.2.0/24 leaves"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("violation %q not reported in: %v", want, err)
		}
	}
}
