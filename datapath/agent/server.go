package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/cnilab/cnilab/datapath/api"
	"github.com/cnilab/cnilab/datapath/flows"

	"github.com/cnilab/cnilab/datapath/loader"
)

// Status is the agent's /v1/status document.
type Status struct {
	Node        string         `json:"node"`
	Ready       bool           `json:"ready"`
	PodCIDR     string         `json:"podCIDR"`
	RoutingMode string         `json:"routingMode"`
	AttachMode  string         `json:"attachMode"`
	Features    map[string]any `json:"features"`
	Endpoints   []api.Endpoint `json:"endpoints"`
	RemoteNodes []remoteNode   `json:"remoteNodes"`
	Policy      *policyStats   `json:"policy,omitempty"`
	Started     time.Time      `json:"started"`
}

func (a *Agent) server() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathHealthz, a.handleHealthz)
	mux.HandleFunc("GET "+api.PathStatus, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, a.Status()) })
	mux.HandleFunc("GET "+api.PathNode, a.handleNode)
	mux.HandleFunc("GET "+api.PathEndpoints, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, a.Status().Endpoints) })
	mux.HandleFunc("PUT "+api.PathEndpoints+"/{id}", a.handlePutEndpoint)
	mux.HandleFunc("DELETE "+api.PathEndpoints+"/{id}", a.handleDeleteEndpoint)
	mux.HandleFunc("GET "+api.PathMaps, a.handleMaps)
	mux.HandleFunc("GET "+api.PathConntrack, a.handleConntrack)
	mux.Handle(api.PathFlows, flows.Handler(a.observe.store))
	mux.Handle(api.PathMetrics, flows.MetricsHandler(a.observe.registry))
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

// handleMaps serves the state maps' entry counts; 503 until the datapath
// is loaded.
// loadedDatapath is the agent's datapath; before it is loaded it answers
// 503 and returns false.
func (a *Agent) loadedDatapath(w http.ResponseWriter) (Datapath, bool) {
	a.mu.Lock()
	dp := a.dp
	a.mu.Unlock()
	if dp == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "datapath not loaded yet"})
		return nil, false
	}
	return dp, true
}

func (a *Agent) handleMaps(w http.ResponseWriter, _ *http.Request) {
	dp, ok := a.loadedDatapath(w)
	if !ok {
		return
	}
	n, err := dp.MapEntries()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (a *Agent) handleConntrack(w http.ResponseWriter, _ *http.Request) {
	dp, ok := a.loadedDatapath(w)
	if !ok {
		return
	}
	entries, err := dp.Conntrack()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	out := make([]api.ConntrackEntry, len(entries))
	for i, e := range entries {
		out[i] = api.ConntrackEntry{Proto: loader.ProtoName(e.Proto), Src: e.Src.String(), Dst: e.Dst.String(),
			Created: e.Created, LastSeen: e.LastSeen, ReplySeen: e.ReplySeen, Closing: e.Closing()}
	}
	writeJSON(w, http.StatusOK, out)
}

// tcpServer is what the agent serves on its TCP address inside the node
// (--metrics-address, the node's loopback): /healthz for the kubelet's
// readiness probe, with the unix socket's semantics, and /metrics.
func (a *Agent) tcpServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathHealthz, a.handleHealthz)
	mux.Handle(api.PathMetrics, flows.MetricsHandler(a.observe.registry))
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

// serveTCP serves tcpServer on addr until ctx ends; it returns the address
// it listens on.
func (a *Agent) serveTCP(ctx context.Context, addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("agent: listen on %s: %w", addr, err)
	}
	srv := a.tcpServer()
	// A scrape reads the datapath's counters: the listener's end waits
	// for one in progress (Run closes the datapath after its workers).
	a.spawn(func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
	})
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Warn("serve "+addr, "err", err)
		}
	}()
	return ln.Addr(), nil
}

func (a *Agent) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	ready := a.ready
	a.mu.Unlock()
	if !ready {
		http.Error(w, "not ready: datapath or node state not reconciled yet", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok"))
}

func (a *Agent) handleNode(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	info := api.NodeInfo{NodeName: a.cfg.NodeName, MTU: a.mtu, Ready: a.ready}
	if a.podCIDR.IsValid() {
		info.PodCIDR, info.Gateway = a.podCIDR.String(), a.gateway.String()
	}
	writeJSON(w, http.StatusOK, info)
}

func (a *Agent) handlePutEndpoint(w http.ResponseWriter, r *http.Request) {
	var ep api.Endpoint
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&ep); err != nil {
		writeJSON(w, http.StatusBadRequest, api.Error{Message: "decode endpoint: " + err.Error()})
		return
	}
	if ep.ContainerID != r.PathValue("id") {
		writeJSON(w, http.StatusBadRequest, api.Error{Message: "container ID in path and body differ"})
		return
	}
	a.mu.Lock()
	ready := a.ready
	a.mu.Unlock()
	if !ready {
		writeJSON(w, http.StatusServiceUnavailable, api.Error{Message: "agent not ready"})
		return
	}
	done, ok := a.beginEndpointWrite()
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, api.Error{Message: "agent stopping"})
		return
	}
	defer done()
	if err := a.putEndpoint(ep); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, api.Error{Message: err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Agent) handleDeleteEndpoint(w http.ResponseWriter, r *http.Request) {
	done, ok := a.beginEndpointWrite()
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, api.Error{Message: "agent stopping"})
		return
	}
	defer done()
	if err := a.deleteEndpoint(r.PathValue("id")); err != nil {
		writeJSON(w, http.StatusInternalServerError, api.Error{Message: err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Status returns a snapshot of the agent's state.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Status{Node: a.cfg.NodeName, Ready: a.ready, RoutingMode: a.cfg.RoutingMode, Started: a.started,
		Endpoints: []api.Endpoint{}, RemoteNodes: []remoteNode{}}
	if a.podCIDR.IsValid() {
		s.PodCIDR = a.podCIDR.String()
	}
	if a.dp != nil {
		s.AttachMode, s.Features = a.dp.AttachMode(), a.dp.Features()
	}
	for _, r := range a.endpoints {
		s.Endpoints = append(s.Endpoints, r.Endpoint)
	}
	sort.Slice(s.Endpoints, func(i, j int) bool { return s.Endpoints[i].IP < s.Endpoints[j].IP })
	for _, r := range a.remotes {
		s.RemoteNodes = append(s.RemoteNodes, r)
	}
	if a.policy != nil {
		st := a.policy.stats
		s.Policy = &st
	}
	sort.Slice(s.RemoteNodes, func(i, j int) bool { return strings.Compare(s.RemoteNodes[i].Name, s.RemoteNodes[j].Name) < 0 })
	return s
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
