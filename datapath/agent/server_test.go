package agent

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cnilab/cnilab/datapath/api"
)

// The TCP listener (--metrics-address) answers /healthz as the socket does,
// for the kubelet's readiness probe, and /metrics; nothing else of the
// node-local API is reachable over TCP.
func TestTCPHealthzAndMetrics(t *testing.T) {
	a, _ := testAgent(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := a.serveTCP(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr.String()
	get := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(http.MethodGet, api.PathHealthz); code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready") {
		t.Errorf("healthz before ready: %d %q", code, body)
	}
	a.setReady(true)
	if code, body := get(http.MethodGet, api.PathHealthz); code != http.StatusOK || body != "ok" {
		t.Errorf("healthz when ready: %d %q", code, body)
	}
	if code, body := get(http.MethodGet, api.PathMetrics); code != http.StatusOK || !strings.Contains(body, "cnilab_endpoints") {
		t.Errorf("metrics: %d %q", code, body)
	}
	for _, p := range []struct{ method, path string }{
		{http.MethodGet, api.PathStatus}, {http.MethodGet, api.PathNode}, {http.MethodGet, api.PathFlows},
		{http.MethodPut, api.PathEndpoints + "/c1"}, {http.MethodDelete, api.PathEndpoints + "/c1"},
	} {
		if code, _ := get(p.method, p.path); code/100 != 4 {
			t.Errorf("%s %s over TCP: %d, want 4xx", p.method, p.path, code)
		}
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := http.Get(base + api.PathHealthz); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("TCP listener still serving after ctx ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The node-local API (endpoints, status, flows) is on a unix socket only
// root can open.
func TestSocketIsOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.sock")
	if err := os.WriteFile(path, nil, 0o666); err != nil { // a stale file from a killed agent
		t.Fatal(err)
	}
	ln, err := listenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("agent socket %s: mode %v, want a socket with 0600", path, fi.Mode())
	}
}
