package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cnilab/cnilab/datapath/flows"
)

// flowBuffer is how many recent flows the agent keeps.
const flowBuffer = 8192

// observer turns datapath events into enriched flows and serves them and
// the metrics.
type observer struct {
	store    *flows.Store
	registry *prometheus.Registry
	gauges   *flows.Gauges

	mu   sync.RWMutex
	byIP map[netip.Addr]flows.Endpoint
}

func newObserver() (*observer, error) {
	o := &observer{store: flows.NewStore(flowBuffer), registry: prometheus.NewRegistry(), byIP: map[netip.Addr]flows.Endpoint{}}
	g, err := flows.NewGauges(o.registry)
	if err != nil {
		return nil, fmt.Errorf("agent: metrics: %w", err)
	}
	o.gauges = g
	return o, nil
}

// Lookup implements flows.Endpoints from the last policy compilation.
func (o *observer) Lookup(ip netip.Addr) (flows.Endpoint, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	e, ok := o.byIP[ip]
	return e, ok
}

func (o *observer) setEndpoints(m map[netip.Addr]flows.Endpoint) {
	o.mu.Lock()
	o.byIP = m
	o.mu.Unlock()
}

// run reads events until ctx ends, restarting the reader after errors.
func (o *observer) run(ctx context.Context, a *Agent, dp Datapath) {
	en := &flows.Enricher{NodeName: a.cfg.NodeName, Endpoints: o}
	for ctx.Err() == nil {
		err := dp.ReadEvents(ctx, func(ev flows.Event) { o.store.Add(en.Enrich(ev)) })
		if err != nil && ctx.Err() == nil {
			a.log.Warn("read flow events", "err", err)
			time.Sleep(time.Second)
		}
	}
}

func (a *Agent) flowsFile() string { return a.cfg.StateDir + "/flows.jsonl" }

// saveFlows keeps the recent flows across a graceful restart (the events
// of the gap wait in the pinned ring buffer; SIGKILL loses only the store).
func (a *Agent) saveFlows() {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, f := range a.observe.store.Query(flows.Filter{}) {
		_ = enc.Encode(f)
	}
	tmp := a.flowsFile() + ".tmp"
	if os.WriteFile(tmp, b.Bytes(), 0o600) == nil {
		_ = os.Rename(tmp, a.flowsFile())
	}
}

// loadFlows restores what saveFlows kept, once.
func (a *Agent) loadFlows() {
	b, err := os.ReadFile(a.flowsFile())
	if err != nil {
		return
	}
	_ = os.Remove(a.flowsFile())
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var f flows.Flow
		if dec.Decode(&f) != nil {
			return
		}
		a.observe.store.Add(f)
	}
}
