package flows

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Counter is one cumulative datapath counter: packets and bytes with one
// verdict, drop reason and direction (one per CPU or already summed: the
// Collector sums entries that share their labels).
type Counter struct {
	Verdict, DropReason uint8
	// DropReasonText is the reason's text; empty: Cilium's text of the
	// number (see Counter metric labels).
	DropReasonText string
	Direction      uint8
	Packets, Bytes uint64
}

// CounterSource reads the datapath's cumulative counters. The Collector
// calls it on every scrape.
type CounterSource interface {
	// Counters returns the verdict counters.
	Counters() ([]Counter, error)
	// LostEvents is the number of flow events the datapath could not put
	// in its ring buffer.
	LostEvents() (uint64, error)
}

var (
	forwardCount = prometheus.NewDesc("cnilab_forward_count_total",
		"Packets forwarded by the datapath.", []string{"direction"}, nil)
	forwardBytes = prometheus.NewDesc("cnilab_forward_bytes_total",
		"Bytes forwarded by the datapath.", []string{"direction"}, nil)
	dropCount = prometheus.NewDesc("cnilab_drop_count_total",
		"Packets dropped by the datapath.", []string{"reason", "direction"}, nil)
	dropBytes = prometheus.NewDesc("cnilab_drop_bytes_total",
		"Bytes dropped by the datapath.", []string{"reason", "direction"}, nil)
	flowsLost = prometheus.NewDesc("cnilab_flows_lost_total",
		"Flow events lost by the datapath (ring buffer full).", nil, nil)
	subscribersDropped = prometheus.NewDesc("cnilab_flow_subscribers_dropped_total",
		"Flows not delivered to followers too slow to read them.", nil, nil)
)

// Collector exposes the datapath counters as Prometheus metrics, read on
// each scrape:
//
//	cnilab_forward_count_total{direction}      packets forwarded
//	cnilab_forward_bytes_total{direction}      bytes forwarded
//	cnilab_drop_count_total{reason,direction}  packets dropped
//	cnilab_drop_bytes_total{reason,direction}  bytes dropped
//	cnilab_flows_lost_total                    datapath ring-buffer overruns
//	cnilab_flow_subscribers_dropped_total      flows lost by slow followers
//
// direction is "INGRESS" or "EGRESS" as in Cilium's metrics; reason is the
// drop reason's text, e.g. "Policy denied", as in Cilium's. Forward
// metrics are always present for both directions; drop metrics only for
// the reasons seen. A failing source fails the scrape's metrics it feeds.
type Collector struct {
	src   CounterSource
	store *Store
}

// NewCollector returns a Collector of src's counters and of store's
// follower drops (store may be nil).
func NewCollector(src CounterSource, store *Store) *Collector {
	return &Collector{src: src, store: store}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{forwardCount, forwardBytes, dropCount, dropBytes, flowsLost, subscribersDropped} {
		ch <- d
	}
}

type dropKey struct{ reason, direction string }

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counters, err := c.src.Counters()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(forwardCount, err)
	} else {
		fwd := map[string][2]uint64{"INGRESS": {}, "EGRESS": {}}
		drop := map[dropKey][2]uint64{}
		for _, k := range counters {
			dir := directionName(k.Direction)
			switch k.Verdict {
			case VerdictForwarded:
				fwd[dir] = add(fwd[dir], k)
			case VerdictDropped:
				key := dropKey{dropReasonText(k.DropReason, k.DropReasonText), dir}
				drop[key] = add(drop[key], k)
			}
		}
		for dir, v := range fwd {
			ch <- counter(forwardCount, v[0], dir)
			ch <- counter(forwardBytes, v[1], dir)
		}
		for key, v := range drop {
			ch <- counter(dropCount, v[0], key.reason, key.direction)
			ch <- counter(dropBytes, v[1], key.reason, key.direction)
		}
	}
	if lost, err := c.src.LostEvents(); err != nil {
		ch <- prometheus.NewInvalidMetric(flowsLost, err)
	} else {
		ch <- counter(flowsLost, lost)
	}
	var subDrops uint64
	if c.store != nil {
		subDrops = c.store.SubscriberDrops()
	}
	ch <- counter(subscribersDropped, subDrops)
}

func add(v [2]uint64, k Counter) [2]uint64 {
	return [2]uint64{v[0] + k.Packets, v[1] + k.Bytes}
}

func counter(d *prometheus.Desc, v uint64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

// Gauges are the agent's state gauges; the agent sets them as its state
// changes.
type Gauges struct {
	// Endpoints is cnilab_endpoints: local endpoints managed.
	Endpoints prometheus.Gauge
	// Policies is cnilab_policies: NetworkPolicies known.
	Policies prometheus.Gauge
	// Identities is cnilab_identities: security identities allocated.
	Identities prometheus.Gauge
}

// NewGauges registers the agent's gauges with reg.
func NewGauges(reg prometheus.Registerer) (*Gauges, error) {
	g := &Gauges{
		Endpoints:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "cnilab_endpoints", Help: "Local endpoints managed by the agent."}),
		Policies:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "cnilab_policies", Help: "NetworkPolicies known to the agent."}),
		Identities: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cnilab_identities", Help: "Security identities allocated by the agent."}),
	}
	for _, c := range []prometheus.Collector{g.Endpoints, g.Policies, g.Identities} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// MetricsHandler serves the metrics of g in the Prometheus exposition
// format. A collector that fails leaves its metrics out, and the error is
// logged through slog's default logger; the others are still served.
func MetricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slogPrintln{},
	})
}

// slogPrintln is promhttp's error logger, writing to slog.
type slogPrintln struct{}

func (slogPrintln) Println(v ...any) { slog.Warn("metrics: " + fmt.Sprint(v...)) }
