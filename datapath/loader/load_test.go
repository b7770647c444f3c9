package loader

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// Every configuration loads and passes the verifier.
func TestLoadVerifier(t *testing.T) {
	requireRoot(t)
	f := ProbeFeatures()
	t.Logf("features: %v", f)
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"native", Options{Mode: Native}},
		{"native-noredirectpeer", Options{Mode: Native, NoRedirectPeer: true}},
		{"vxlan", Options{Mode: VXLAN, VXLANIfindex: 1, VNI: 7}},
		{"vxlan-noredirectpeer", Options{Mode: VXLAN, VXLANIfindex: 1, NoRedirectPeer: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.PinPath = bpffsDir(t)
			d := load(t, tc.opts)
			for name, p := range map[string]interface{ FD() int }{
				"from_container": d.objs.CnilabFromContainer, "to_overlay": d.objs.CnilabToOverlay,
				"from_overlay": d.objs.CnilabFromOverlay, "from_netdev": d.objs.CnilabFromNetdev,
			} {
				if p.FD() < 0 {
					t.Errorf("%s not loaded", name)
				}
			}
			for _, m := range []string{"cnilab_endpoints", "cnilab_remote"} {
				if _, err := os.Stat(filepath.Join(tc.opts.PinPath, m)); err != nil {
					t.Errorf("map %s not pinned: %v", m, err)
				}
			}
			if want := map[bool]AttachMode{true: AttachTCX, false: AttachTC}[f.TCX]; os.Getenv(AttachEnv) == "" && d.AttachMode() != want {
				t.Errorf("attach mode %q, want %q (probe %v)", d.AttachMode(), want, f)
			}
		})
	}
}

func TestLoadOptionErrors(t *testing.T) {
	requireRoot(t)
	for name, opts := range map[string]Options{
		"no pin path":      {},
		"vxlan no ifindex": {Mode: VXLAN},
		"bad mode":         {Mode: 5},
		"bad vni":          {Mode: VXLAN, VXLANIfindex: 1, VNI: 1 << 24},
		"bad attach":       {Attach: "xdp"},
	} {
		if name != "no pin path" {
			opts.PinPath = bpffsDir(t)
		}
		if d, err := Load(opts); err == nil {
			d.Close()
			t.Errorf("%s: Load succeeded", name)
		}
	}
}

func TestForcedAttachMode(t *testing.T) {
	requireRoot(t)
	t.Setenv(AttachEnv, "tc")
	d := load(t, Options{PinPath: bpffsDir(t), Attach: AttachTCX})
	if d.AttachMode() != AttachTC {
		t.Errorf("%s=tc: attach mode %q", AttachEnv, d.AttachMode())
	}
}

func TestMapAPI(t *testing.T) {
	requireRoot(t)
	pin := bpffsDir(t)
	d := load(t, Options{PinPath: pin})
	ip := netip.MustParseAddr("10.1.2.3")
	ep := EndpointInfo{Ifindex: 42, PodMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, HostMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	if err := d.UpsertEndpoint(ip, ep); err != nil {
		t.Fatal(err)
	}
	if err := d.UpsertEndpoint(netip.MustParseAddr("::1"), ep); err == nil {
		t.Error("IPv6 endpoint accepted")
	}
	if err := d.UpsertEndpoint(ip, EndpointInfo{Ifindex: 1}); err == nil {
		t.Error("endpoint without MACs accepted")
	}
	if err := d.UpsertRemote(netip.MustParsePrefix("10.9.1.77/24"), netip.MustParseAddr("192.168.0.2")); err != nil {
		t.Fatal(err)
	}
	if err := d.UpsertRemote(netip.MustParsePrefix("10.9.0.0/16"), netip.MustParseAddr("fe80::1")); err == nil {
		t.Error("IPv6 node accepted")
	}

	// A second Datapath on the same pins sees the same entries.
	d2 := load(t, Options{PinPath: pin})
	eps, err := d2.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[netip.Addr]EndpointInfo{ip: ep}; !reflect.DeepEqual(eps, want) {
		t.Errorf("Endpoints() = %v, want %v", eps, want)
	}
	rs, err := d2.Remotes()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[netip.Prefix]netip.Addr{netip.MustParsePrefix("10.9.1.0/24"): netip.MustParseAddr("192.168.0.2")}; !reflect.DeepEqual(rs, want) {
		t.Errorf("Remotes() = %v, want %v", rs, want)
	}

	for _, err := range []error{
		d.DeleteEndpoint(ip), d.DeleteEndpoint(ip),
		d.DeleteRemote(netip.MustParsePrefix("10.9.1.0/24")), d.DeleteRemote(netip.MustParsePrefix("10.9.1.0/24")),
	} {
		if err != nil {
			t.Errorf("delete: %v", err)
		}
	}
	if eps, _ := d2.Endpoints(); len(eps) != 0 {
		t.Errorf("endpoints left: %v", eps)
	}
	if rs, _ := d2.Remotes(); len(rs) != 0 {
		t.Errorf("remotes left: %v", rs)
	}
}
