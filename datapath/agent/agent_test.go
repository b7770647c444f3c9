package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/cnilab/cnilab/datapath/api"
	"github.com/cnilab/cnilab/datapath/flows"
	"github.com/cnilab/cnilab/datapath/loader"
)

type fakeDatapath struct {
	attached  map[int]bool
	endpoints map[netip.Addr]EndpointEntry
	failPut   bool
	failDel   bool
	conntrack []loader.ConntrackEntry
}

func newFake() *fakeDatapath {
	return &fakeDatapath{attached: map[int]bool{}, endpoints: map[netip.Addr]EndpointEntry{}}
}
func (f *fakeDatapath) AttachMode() string                          { return "fake" }
func (f *fakeDatapath) Features() map[string]any                    { return map[string]any{"fake": true} }
func (f *fakeDatapath) AttachEndpoint(i int) error                  { f.attached[i] = true; return nil }
func (f *fakeDatapath) DetachEndpoint(i int) error                  { delete(f.attached, i); return nil }
func (f *fakeDatapath) AttachOverlay(int) error                     { return nil }
func (f *fakeDatapath) AttachNetdev(int) error                      { return nil }
func (f *fakeDatapath) UpsertRemote(netip.Prefix, netip.Addr) error { return nil }
func (f *fakeDatapath) DeleteRemote(netip.Prefix) error             { return nil }
func (f *fakeDatapath) Close() error                                { return nil }
func (f *fakeDatapath) DeleteEndpoint(ip netip.Addr) error {
	if f.failDel {
		return io.ErrUnexpectedEOF
	}
	delete(f.endpoints, ip)
	return nil
}
func (f *fakeDatapath) UpsertEndpoint(ip netip.Addr, e EndpointEntry) error {
	if f.failPut {
		return io.ErrUnexpectedEOF
	}
	f.endpoints[ip] = e
	return nil
}

func testAgent(t *testing.T, ready bool) (*Agent, *fakeDatapath) {
	t.Helper()
	a, err := newAgent(Config{NodeName: "n1", StateDir: t.TempDir(), BPFFSDir: "/x", Socket: "/x.sock", RoutingMode: RoutingNative, UnderlayDevice: "eth0"},
		slog.New(slog.NewTextHandler(io.Discard, nil)), fake.NewClientset())
	if err != nil {
		t.Fatal(err)
	}
	f := newFake()
	a.dp, a.ready = f, ready
	a.podCIDR = netip.MustParsePrefix("10.244.1.0/24")
	a.gateway = netip.MustParseAddr("10.244.1.1")
	a.mtu = 1500
	return a, f
}

// lo (index 1) stands in for a host-side veth: it always exists.
var loEndpoint = api.Endpoint{ContainerID: "c1", IfName: "eth0", IP: "10.244.1.7", PodMAC: "02:00:00:00:00:01",
	HostIfName: "lo", HostIfIndex: 1, HostMAC: "02:00:00:00:00:02", PodNamespace: "x", PodName: "a"}

func do(t *testing.T, a *Agent, method, path string, body any) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	rec := httptest.NewRecorder()
	a.server().Handler.ServeHTTP(rec, httptest.NewRequest(method, path, rd))
	return rec
}

func TestNodeInfoAndHealth(t *testing.T) {
	a, _ := testAgent(t, false)
	if rec := do(t, a, http.MethodGet, api.PathHealthz, nil); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("healthz before ready: %d", rec.Code)
	}
	a.ready = true
	if rec := do(t, a, http.MethodGet, api.PathHealthz, nil); rec.Code != http.StatusOK {
		t.Errorf("healthz when ready: %d", rec.Code)
	}
	var n api.NodeInfo
	rec := do(t, a, http.MethodGet, api.PathNode, nil)
	if err := json.Unmarshal(rec.Body.Bytes(), &n); err != nil {
		t.Fatal(err)
	}
	if n.PodCIDR != "10.244.1.0/24" || n.Gateway != "10.244.1.1" || !n.Ready || n.MTU != 1500 {
		t.Errorf("node info %+v", n)
	}
}

func TestPutAndDeleteEndpoint(t *testing.T) {
	a, f := testAgent(t, true)
	rec := do(t, a, http.MethodPut, api.PathEndpoints+"/c1", loEndpoint)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("put: %d %s", rec.Code, rec.Body)
	}
	if !f.attached[1] || f.endpoints[netip.MustParseAddr("10.244.1.7")].Ifindex != 1 {
		t.Fatalf("datapath not written: %+v %+v", f.attached, f.endpoints)
	}
	if got := a.Status().Endpoints; len(got) != 1 || got[0].ContainerID != "c1" {
		t.Fatalf("status endpoints %+v", got)
	}
	// A restarted agent finds the endpoint from its record.
	b, _ := testAgent(t, true)
	b.cfg.StateDir = a.cfg.StateDir
	if err := b.restoreEndpoints(); err != nil || len(b.endpoints) != 1 {
		t.Fatalf("restore: %v, %d endpoints", err, len(b.endpoints))
	}
	if rec := do(t, a, http.MethodDelete, api.PathEndpoints+"/c1", nil); rec.Code != http.StatusNoContent {
		t.Fatalf("delete: %d", rec.Code)
	}
	if len(f.endpoints) != 0 || f.attached[1] {
		t.Fatalf("delete left datapath state: %+v %+v", f.attached, f.endpoints)
	}
	if rec := do(t, a, http.MethodDelete, api.PathEndpoints+"/c1", nil); rec.Code != http.StatusNoContent {
		t.Fatalf("second delete: %d", rec.Code)
	}
}

// An endpoint whose address a newer one took (its CNI ADD gave up waiting
// for the agent, and the plugin released the address) leaves the registry
// when the newer one registers: deleting the newer pod then clears the map
// entry instead of keeping it for the stale holder.
func TestPutEndpointSupersedesHolderOfItsAddress(t *testing.T) {
	a, f := testAgent(t, true)
	if rec := do(t, a, http.MethodPut, api.PathEndpoints+"/c1", loEndpoint); rec.Code != http.StatusNoContent {
		t.Fatalf("put c1: %d %s", rec.Code, rec.Body)
	}
	newer := loEndpoint
	newer.ContainerID, newer.PodName = "c2", "b"
	if rec := do(t, a, http.MethodPut, api.PathEndpoints+"/c2", newer); rec.Code != http.StatusNoContent {
		t.Fatalf("put c2: %d %s", rec.Code, rec.Body)
	}
	if got := a.Status().Endpoints; len(got) != 1 || got[0].ContainerID != "c2" {
		t.Fatalf("registry after c2 took c1's address: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(a.recordDir(), "c1.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("c1's record kept: %v", err)
	}
	if rec := do(t, a, http.MethodDelete, api.PathEndpoints+"/c2", nil); rec.Code != http.StatusNoContent {
		t.Fatalf("delete c2: %d", rec.Code)
	}
	if len(f.endpoints) != 0 || f.attached[1] {
		t.Fatalf("deleting c2 left datapath state: %+v %+v", f.attached, f.endpoints)
	}
}

func TestPutEndpointRejects(t *testing.T) {
	cases := map[string]struct {
		mutate func(*api.Endpoint)
		want   string
	}{
		"outside cidr": {func(e *api.Endpoint) { e.IP = "10.244.2.7" }, "outside this node's podCIDR"},
		"bad ip":       {func(e *api.Endpoint) { e.IP = "nope" }, "invalid IPv4"},
		"bad mac":      {func(e *api.Endpoint) { e.PodMAC = "zz" }, "pod MAC"},
		"no link":      {func(e *api.Endpoint) { e.HostIfName = "lxcnothere" }, "not found on this node"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a, f := testAgent(t, true)
			ep := loEndpoint
			tc.mutate(&ep)
			rec := do(t, a, http.MethodPut, api.PathEndpoints+"/c1", ep)
			if rec.Code/100 == 2 || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("want an error containing %q, got %d %s", tc.want, rec.Code, rec.Body)
			}
			if len(f.endpoints) != 0 || len(f.attached) != 0 {
				t.Fatal("a rejected endpoint reached the datapath")
			}
		})
	}
	a, f := testAgent(t, true)
	f.failPut = true
	if rec := do(t, a, http.MethodPut, api.PathEndpoints+"/c1", loEndpoint); rec.Code/100 == 2 || len(f.attached) != 0 {
		t.Fatalf("failed map write left an attachment: %d %+v", rec.Code, f.attached)
	}
	a, _ = testAgent(t, false)
	if rec := do(t, a, http.MethodPut, api.PathEndpoints+"/c1", loEndpoint); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("put before ready: %d", rec.Code)
	}
}

func (f *fakeDatapath) UpsertIdentity(netip.Prefix, uint32) error { return nil }
func (f *fakeDatapath) DeleteIdentity(netip.Prefix) error         { return nil }
func (f *fakeDatapath) GCConntrack(time.Time) (int, error)        { return 0, nil }
func (f *fakeDatapath) AddPolicyKey(netip.Addr, uint32, uint16, uint8, bool) error {
	return nil
}
func (f *fakeDatapath) RemovePolicyKey(netip.Addr, uint32, uint16, uint8, bool) error {
	return nil
}
func (f *fakeDatapath) ReadEvents(ctx context.Context, _ func(flows.Event)) error {
	<-ctx.Done()
	return nil
}
func (f *fakeDatapath) Counters() ([]flows.Counter, error) { return nil, nil }
func (f *fakeDatapath) LostEvents() (uint64, error)        { return 0, nil }
func (f *fakeDatapath) EndpointEntries() (map[netip.Addr]EndpointEntry, error) {
	return maps.Clone(f.endpoints), nil
}
func (f *fakeDatapath) PruneVethOwners() ([]string, error)          { return nil, nil }
func (f *fakeDatapath) Conntrack() ([]loader.ConntrackEntry, error) { return f.conntrack, nil }
func (f *fakeDatapath) MapEntries() (map[string]int, error) {
	return map[string]int{"cnilab_endpoints": len(f.endpoints)}, nil
}

// TestRestoreKeepsEnforcement is the regression test for the fail-open
// window the reliability spec found: a restarted agent rewrote each
// restored endpoint without the policy flags the pinned map held, so an
// isolated pod accepted every peer until its policy next changed.
func TestRestoreKeepsEnforcement(t *testing.T) {
	a, _ := testAgent(t, true)
	if rec := do(t, a, http.MethodPut, api.PathEndpoints+"/c1", loEndpoint); rec.Code != http.StatusNoContent {
		t.Fatalf("put: %d %s", rec.Code, rec.Body)
	}
	// The restarted agent opens the same pinned map: the policy engine had
	// set ingress enforcement in it.
	b, f := testAgent(t, true)
	b.cfg.StateDir = a.cfg.StateDir
	ip := netip.MustParseAddr("10.244.1.7")
	f.endpoints[ip] = EndpointEntry{Ifindex: 1, PolicyIngress: true}
	if err := b.restoreEndpoints(); err != nil {
		t.Fatal(err)
	}
	if e := f.endpoints[ip]; !e.PolicyIngress || e.PolicyEgress {
		t.Errorf("after restore the endpoint map holds %+v, want ingress still enforced", e)
	}
	if r := b.endpoints["c1"]; r == nil || !r.policyIngress {
		t.Errorf("restored record %+v does not know ingress is enforced", r)
	}
}

// A record whose veth is gone is forgotten on restore without taking the
// map entry of a live endpoint that has its address now, whether the
// directory lists it before the live one (a0) or after (z9).
func TestRestoreForgetsGoneEndpointButKeepsAddressHolder(t *testing.T) {
	a, _ := testAgent(t, true)
	if rec := do(t, a, http.MethodPut, api.PathEndpoints+"/c1", loEndpoint); rec.Code != http.StatusNoContent {
		t.Fatalf("put: %d %s", rec.Code, rec.Body)
	}
	for _, id := range []string{"a0", "z9"} {
		gone := loEndpoint
		gone.ContainerID, gone.HostIfName, gone.HostIfIndex = id, "lxcgone", 1<<20
		writeRecord(t, a, gone, time.Now())
	}
	r, f := testAgent(t, true)
	r.cfg.StateDir = a.cfg.StateDir
	ip := netip.MustParseAddr(loEndpoint.IP)
	f.endpoints[ip] = EndpointEntry{Ifindex: 1}
	if err := r.restoreEndpoints(); err != nil {
		t.Fatal(err)
	}
	if e, ok := f.endpoints[ip]; !ok || e.Ifindex != 1 {
		t.Errorf("after restore the endpoint map holds %+v (present %v), want c1's entry", e, ok)
	}
	if len(r.endpoints) != 1 || r.endpoints["c1"] == nil {
		t.Errorf("restored %v, want c1 only", slices.Collect(maps.Keys(r.endpoints)))
	}
	for _, id := range []string{"a0", "z9"} {
		if _, err := os.Stat(filepath.Join(a.recordDir(), id+".json")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("gone endpoint %s's record kept: %v", id, err)
		}
	}
}

func writeRecord(t *testing.T, a *Agent, ep api.Endpoint, saved time.Time) {
	t.Helper()
	b, err := json.Marshal(ep)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(a.recordDir(), ep.ContainerID+".json")
	if err := os.MkdirAll(a.recordDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, saved, saved); err != nil {
		t.Fatal(err)
	}
}

// Two live records with one address (an agent stopped between saving the
// newer and forgetting the one it superseded): restore keeps the newer,
// whichever sorts first.
func TestRestoreKeepsNewerOfTwoRecordsWithOneAddress(t *testing.T) {
	for _, newer := range []string{"c1", "c2"} {
		t.Run(newer+" newer", func(t *testing.T) {
			a, f := testAgent(t, true)
			for _, id := range []string{"c1", "c2"} {
				ep := loEndpoint
				ep.ContainerID = id
				saved := time.Now().Add(-time.Hour)
				if id == newer {
					saved = time.Now()
				}
				writeRecord(t, a, ep, saved)
			}
			if err := a.restoreEndpoints(); err != nil {
				t.Fatal(err)
			}
			if len(a.endpoints) != 1 || a.endpoints[newer] == nil {
				t.Fatalf("restored %v, want %s only", slices.Collect(maps.Keys(a.endpoints)), newer)
			}
			if len(f.endpoints) != 1 {
				t.Errorf("endpoint map %v, want one entry", f.endpoints)
			}
			entries, _ := os.ReadDir(a.recordDir())
			if len(entries) != 1 || entries[0].Name() != newer+".json" {
				t.Errorf("records left: %v, want %s.json", entries, newer)
			}
		})
	}
}

// A delete whose map write fails keeps the endpoint, record and all, so
// the retried CNI DEL can finish it.
func TestDeleteEndpointFailureKeepsRecord(t *testing.T) {
	a, f := testAgent(t, true)
	if rec := do(t, a, http.MethodPut, api.PathEndpoints+"/c1", loEndpoint); rec.Code != http.StatusNoContent {
		t.Fatalf("put: %d %s", rec.Code, rec.Body)
	}
	f.failDel = true
	if rec := do(t, a, http.MethodDelete, api.PathEndpoints+"/c1", nil); rec.Code != http.StatusInternalServerError {
		t.Fatalf("delete with a failing map: %d, want 500", rec.Code)
	}
	if got := a.Status().Endpoints; len(got) != 1 {
		t.Fatalf("endpoint dropped by a failed delete: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(a.recordDir(), "c1.json")); err != nil {
		t.Fatalf("record dropped by a failed delete: %v", err)
	}
	f.failDel = false
	if rec := do(t, a, http.MethodDelete, api.PathEndpoints+"/c1", nil); rec.Code != http.StatusNoContent {
		t.Fatalf("retried delete: %d", rec.Code)
	}
	if len(f.endpoints) != 0 || len(a.Status().Endpoints) != 0 {
		t.Fatalf("retried delete left %v / %v", f.endpoints, a.Status().Endpoints)
	}
}

// Once Run stops, endpoint adds and deletes are turned away (503) before
// they touch the datapath, which is about to close.
func TestEndpointWritesClosed(t *testing.T) {
	a, f := testAgent(t, true)
	if rec := do(t, a, http.MethodPut, api.PathEndpoints+"/c1", loEndpoint); rec.Code != http.StatusNoContent {
		t.Fatalf("put: %d %s", rec.Code, rec.Body)
	}
	a.closeEndpointWrites()
	other := loEndpoint
	other.ContainerID, other.IP = "c2", "10.244.1.8"
	if rec := do(t, a, http.MethodPut, api.PathEndpoints+"/c2", other); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("put after close: %d, want 503", rec.Code)
	}
	if rec := do(t, a, http.MethodDelete, api.PathEndpoints+"/c1", nil); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("delete after close: %d, want 503", rec.Code)
	}
	if len(f.endpoints) != 1 || len(a.Status().Endpoints) != 1 {
		t.Errorf("writes after close reached the datapath: %v / %v", f.endpoints, a.Status().Endpoints)
	}
}

func TestConntrackListing(t *testing.T) {
	a, f := testAgent(t, true)
	created := time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)
	f.conntrack = []loader.ConntrackEntry{
		{Proto: loader.ProtoTCP, Src: netip.MustParseAddrPort("10.244.1.5:43210"), Dst: netip.MustParseAddrPort("10.244.2.7:80"),
			Created: created, LastSeen: created.Add(time.Second), ReplySeen: true, FinOrig: true},
		{Proto: 47, Src: netip.MustParseAddrPort("10.244.1.5:0"), Dst: netip.MustParseAddrPort("10.244.2.7:0"), Created: created, LastSeen: created},
	}
	rec := do(t, a, http.MethodGet, api.PathConntrack, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", api.PathConntrack, rec.Code, rec.Body)
	}
	var got []api.ConntrackEntry
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := []api.ConntrackEntry{
		{Proto: "tcp", Src: "10.244.1.5:43210", Dst: "10.244.2.7:80", Created: created, LastSeen: created.Add(time.Second), ReplySeen: true, Closing: true},
		{Proto: "47", Src: "10.244.1.5:0", Dst: "10.244.2.7:0", Created: created, LastSeen: created},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !got[i].Created.Equal(want[i].Created) || !got[i].LastSeen.Equal(want[i].LastSeen) {
			t.Errorf("entry %d times %v/%v, want %v/%v", i, got[i].Created, got[i].LastSeen, want[i].Created, want[i].LastSeen)
		}
		got[i].Created, got[i].LastSeen, want[i].Created, want[i].LastSeen = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
