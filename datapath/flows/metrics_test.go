package flows

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeSource struct {
	counters []Counter
	lost     uint64
	err      error
}

func (f *fakeSource) Counters() ([]Counter, error) { return f.counters, f.err }
func (f *fakeSource) LostEvents() (uint64, error)  { return f.lost, nil }

func TestCollector(t *testing.T) {
	src := &fakeSource{lost: 7, counters: []Counter{
		// Per-CPU entries with equal labels are summed.
		{Verdict: VerdictForwarded, Direction: DirIngress, Packets: 10, Bytes: 1000},
		{Verdict: VerdictForwarded, Direction: DirIngress, Packets: 5, Bytes: 500},
		{Verdict: VerdictDropped, DropReason: 133, DropReasonText: "Policy denied", Direction: DirIngress, Packets: 3, Bytes: 180},
		{Verdict: VerdictDropped, DropReason: 133, Direction: DirIngress, Packets: 1, Bytes: 60}, // text from the number
		{Verdict: VerdictDropped, DropReason: 133, DropReasonText: "Policy denied", Direction: DirEgress, Packets: 2, Bytes: 120},
		{Verdict: VerdictDropped, DropReason: 135, DropReasonText: "CT: Truncated or invalid header", Direction: DirEgress, Packets: 1, Bytes: 40},
	}}
	store := NewStore(10, WithFollowBuffer(1))
	ctx, cancel := testContext()
	defer cancel()
	store.Follow(ctx, Filter{})
	store.Add(Flow{})
	store.Add(Flow{}) // lost by the follower
	const want = `
# HELP cnilab_drop_bytes_total Bytes dropped by the datapath.
# TYPE cnilab_drop_bytes_total counter
cnilab_drop_bytes_total{direction="EGRESS",reason="CT: Truncated or invalid header"} 40
cnilab_drop_bytes_total{direction="EGRESS",reason="Policy denied"} 120
cnilab_drop_bytes_total{direction="INGRESS",reason="Policy denied"} 240
# HELP cnilab_drop_count_total Packets dropped by the datapath.
# TYPE cnilab_drop_count_total counter
cnilab_drop_count_total{direction="EGRESS",reason="CT: Truncated or invalid header"} 1
cnilab_drop_count_total{direction="EGRESS",reason="Policy denied"} 2
cnilab_drop_count_total{direction="INGRESS",reason="Policy denied"} 4
# HELP cnilab_flow_subscribers_dropped_total Flows not delivered to followers too slow to read them.
# TYPE cnilab_flow_subscribers_dropped_total counter
cnilab_flow_subscribers_dropped_total 1
# HELP cnilab_flows_lost_total Flow events lost by the datapath (ring buffer full).
# TYPE cnilab_flows_lost_total counter
cnilab_flows_lost_total 7
# HELP cnilab_forward_bytes_total Bytes forwarded by the datapath.
# TYPE cnilab_forward_bytes_total counter
cnilab_forward_bytes_total{direction="EGRESS"} 0
cnilab_forward_bytes_total{direction="INGRESS"} 1500
# HELP cnilab_forward_count_total Packets forwarded by the datapath.
# TYPE cnilab_forward_count_total counter
cnilab_forward_count_total{direction="EGRESS"} 0
cnilab_forward_count_total{direction="INGRESS"} 15
`
	if err := testutil.CollectAndCompare(NewCollector(src, store), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(NewCollector(src, store)); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestMetricsHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	// A source that fails leaves out the verdict counters only.
	src := &fakeSource{lost: 2, err: errors.New("map read failed")}
	reg.MustRegister(NewCollector(src, nil))
	g, err := NewGauges(reg)
	if err != nil {
		t.Fatal(err)
	}
	g.Endpoints.Set(4)
	g.Policies.Set(2)
	g.Identities.Set(9)
	if _, err := NewGauges(reg); err == nil {
		t.Error("registering the gauges twice succeeded")
	}

	rec := httptest.NewRecorder()
	MetricsHandler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{"cnilab_endpoints 4", "cnilab_policies 2", "cnilab_identities 9",
		"cnilab_flows_lost_total 2", "cnilab_flow_subscribers_dropped_total 0"} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if rec.Code != 200 || strings.Contains(string(body), "cnilab_forward_count_total") {
		t.Errorf("status %d; failed counters exposed:\n%s", rec.Code, body)
	}
}
