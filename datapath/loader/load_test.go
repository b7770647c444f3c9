package loader

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
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
		{"native-noevents", Options{Mode: Native, NoEvents: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.PinPath = bpffsDir(t)
			d := load(t, tc.opts)
			for name, p := range map[string]*ebpf.Program{
				"from_container": d.objs.CnilabFromContainer, "to_container": d.objs.CnilabToContainer,
				"to_overlay": d.objs.CnilabToOverlay, "from_overlay": d.objs.CnilabFromOverlay,
				"from_netdev": d.objs.CnilabFromNetdev,
			} {
				if p.FD() < 0 {
					t.Errorf("%s not loaded", name)
					continue
				}
				// For the record: how hard the verifier worked.
				if info, err := p.Info(); err == nil {
					insns, _ := info.Instructions()
					verified, _ := info.VerifiedInstructions()
					t.Logf("%s: %d instructions, %d verified", name, len(insns), verified)
				}
			}
			for _, m := range []string{"cnilab_endpoints", "cnilab_remote", "cnilab_lxc", "cnilab_ipcache", "cnilab_policy", "cnilab_ct", "cnilab_frag",
				"cnilab_events", "cnilab_events_lost", "cnilab_metrics"} {
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

	if n, err := d.MapEntries(); err != nil || n["cnilab_endpoints"] != 1 || n["cnilab_remote"] != 1 || n["cnilab_ct"] != 0 || len(n) != 7 {
		t.Errorf("MapEntries() = %v, %v; want one endpoint, one remote, no connections, 7 maps", n, err)
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
	if n, err := d2.MapEntries(); err != nil || n["cnilab_endpoints"] != 0 || n["cnilab_remote"] != 0 {
		t.Errorf("MapEntries() after the deletes = %v, %v", n, err)
	}
}

func TestPolicyMapAPI(t *testing.T) {
	requireRoot(t)
	pin := bpffsDir(t)
	d := load(t, Options{PinPath: pin})
	ep := netip.MustParseAddr("10.1.2.3")
	other := netip.MustParseAddr("10.1.2.4")
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}

	// Identities.
	for p, id := range map[string]uint32{"10.1.2.3/32": 300, "10.9.0.77/16": 301, "0.0.0.0/0": IdentityWorld} {
		if err := d.UpsertIdentity(netip.MustParsePrefix(p), id); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []struct {
		p  string
		id uint32
	}{{"10.0.0.0/8", IdentityAny}, {"fd00::/64", 300}} {
		if err := d.UpsertIdentity(netip.MustParsePrefix(bad.p), bad.id); err == nil {
			t.Errorf("UpsertIdentity(%s, %d) accepted", bad.p, bad.id)
		}
	}
	ids, err := d.Identities()
	want := map[netip.Prefix]uint32{
		netip.MustParsePrefix("10.1.2.3/32"): 300, netip.MustParsePrefix("10.9.0.0/16"): 301, netip.MustParsePrefix("0.0.0.0/0"): IdentityWorld,
	}
	if err != nil || !reflect.DeepEqual(ids, want) {
		t.Fatalf("Identities() = %v, %v; want %v", ids, err, want)
	}
	if err := d.DeleteIdentity(netip.MustParsePrefix("10.9.0.0/16")); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteIdentity(netip.MustParsePrefix("10.9.0.0/16")); err != nil {
		t.Fatal(err)
	}
	if ids, _ := d.Identities(); len(ids) != 2 {
		t.Errorf("after delete: %v", ids)
	}

	// Policy entries: set, diff, validation, per endpoint.
	k1 := PolicyKey{Identity: 300, Port: 80, Proto: ProtoTCP}
	k2 := PolicyKey{Endpoint: ep, Identity: IdentityAny, Proto: ProtoUDP, Egress: true}
	k3 := PolicyKey{Identity: IdentityHost}
	entries := func(ip netip.Addr) []PolicyKey {
		t.Helper()
		ks, err := d.PolicyEntries(ip)
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	withEP := func(ip netip.Addr, ks ...PolicyKey) []PolicyKey {
		for i := range ks {
			ks[i].Endpoint = ip
		}
		return ks
	}
	if err := d.SetPolicy(ep, []PolicyKey{k1, k2, k2}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetPolicy(other, []PolicyKey{k1}); err != nil {
		t.Fatal(err)
	}
	if got, want := entries(ep), withEP(ep, k1, k2); !reflect.DeepEqual(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if err := d.SetPolicy(ep, []PolicyKey{k2, k3}); err != nil {
		t.Fatal(err)
	}
	if got, want := entries(ep), withEP(ep, k3, k2); !reflect.DeepEqual(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	for _, bad := range []PolicyKey{
		{Endpoint: other, Identity: 1},
		{Identity: 1, Port: 80},
		{Identity: 1, Port: 80, Proto: ProtoICMP},
	} {
		if err := d.SetPolicy(ep, []PolicyKey{k1, bad}); err == nil {
			t.Errorf("SetPolicy accepted %v", bad)
		}
	}
	if got, want := entries(ep), withEP(ep, k3, k2); !reflect.DeepEqual(got, want) {
		t.Fatalf("a rejected SetPolicy changed the entries: %v, want %v", got, want)
	}
	// A second Datapath on the same pins reads the map and diffs from it.
	d2 := load(t, Options{PinPath: pin})
	if err := d2.SetPolicy(ep, []PolicyKey{k1}); err != nil {
		t.Fatal(err)
	}
	if got, want := entries(ep), withEP(ep, k1); !reflect.DeepEqual(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if err := d2.DeletePolicy(ep); err != nil {
		t.Fatal(err)
	}
	if got := entries(ep); len(got) != 0 {
		t.Fatalf("entries after DeletePolicy: %v", got)
	}
	if got, want := entries(other), withEP(other, k1); !reflect.DeepEqual(got, want) {
		t.Fatalf("other endpoint's entries: %v, want %v", got, want)
	}

	// Endpoint flags and the veth owner index.
	info := EndpointInfo{Ifindex: 42, PodMAC: mac, HostMAC: mac, PolicyIngress: true}
	if err := d.UpsertEndpoint(ep, info); err != nil {
		t.Fatal(err)
	}
	if err := d.SetEndpointPolicy(other, true, true); err == nil {
		t.Error("SetEndpointPolicy on an absent endpoint succeeded")
	}
	if err := d.SetEndpointPolicy(ep, false, true); err != nil {
		t.Fatal(err)
	}
	info.PolicyIngress, info.PolicyEgress = false, true
	if eps, err := d.Endpoints(); err != nil || !reflect.DeepEqual(eps, map[netip.Addr]EndpointInfo{ep: info}) {
		t.Fatalf("Endpoints() = %v, %v", eps, err)
	}
	owner := func(ifindex uint32) (netip.Addr, bool) {
		var v uint32
		if err := d.objs.CnilabLxc.Lookup(ifindex, &v); err != nil {
			return netip.Addr{}, false
		}
		return addrOf(v), true
	}
	if a, ok := owner(42); !ok || a != ep {
		t.Fatalf("owner of 42: %v %v", a, ok)
	}
	info.Ifindex = 43 // the pod's veth was recreated
	if err := d.UpsertEndpoint(ep, info); err != nil {
		t.Fatal(err)
	}
	if _, ok := owner(42); ok {
		t.Error("stale owner of 42 kept")
	}
	if a, ok := owner(43); !ok || a != ep {
		t.Fatalf("owner of 43: %v %v", a, ok)
	}
	if err := d.DeleteEndpoint(ep); err != nil {
		t.Fatal(err)
	}
	if _, ok := owner(43); ok {
		t.Error("owner of 43 kept after DeleteEndpoint")
	}

	// Owners no endpoint accounts for (no endpoint; the endpoint on
	// another veth) are pruned; the rest stay.
	info.Ifindex = 44
	if err := d.UpsertEndpoint(ep, info); err != nil {
		t.Fatal(err)
	}
	for ifindex, ip := range map[uint32]netip.Addr{45: other, 46: ep} {
		if err := d.objs.CnilabLxc.Put(ifindex, be32(ip.As4())); err != nil {
			t.Fatal(err)
		}
	}
	pruned, err := d.PruneVethOwners()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(pruned, func(a, b VethOwner) int { return a.Ifindex - b.Ifindex })
	if want := []VethOwner{{45, other}, {46, ep}}; !reflect.DeepEqual(pruned, want) {
		t.Errorf("pruned %v, want %v", pruned, want)
	}
	if a, ok := owner(44); !ok || a != ep {
		t.Errorf("owner of 44 after pruning: %v %v", a, ok)
	}
	for _, i := range []uint32{45, 46} {
		if _, ok := owner(i); ok {
			t.Errorf("owner of %d kept by pruning", i)
		}
	}
	if again, err := d.PruneVethOwners(); err != nil || len(again) != 0 {
		t.Errorf("second prune: %v, %v", again, err)
	}
}

// Single-entry updates and SetPolicy share one view of the map.
func TestPolicyKeyUpdates(t *testing.T) {
	requireRoot(t)
	d := load(t, Options{PinPath: bpffsDir(t)})
	ep := netip.MustParseAddr("10.1.2.3")
	k1 := PolicyKey{Endpoint: ep, Identity: 300, Port: 80, Proto: ProtoTCP}
	k2 := PolicyKey{Endpoint: ep, Identity: 301, Egress: true}
	for _, err := range []error{d.AddPolicyKey(k1), d.AddPolicyKey(k2), d.AddPolicyKey(k2), d.RemovePolicyKey(k1), d.RemovePolicyKey(k1)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := d.AddPolicyKey(PolicyKey{Identity: 1}); err == nil {
		t.Error("entry without endpoint accepted")
	}
	if got, err := d.PolicyEntries(ep); err != nil || !reflect.DeepEqual(got, []PolicyKey{k2}) {
		t.Fatalf("entries %v, %v", got, err)
	}
	if err := d.SetPolicy(ep, []PolicyKey{k1}); err != nil {
		t.Fatal(err)
	}
	if got, err := d.PolicyEntries(ep); err != nil || !reflect.DeepEqual(got, []PolicyKey{k1}) {
		t.Fatalf("entries %v, %v", got, err)
	}
}
