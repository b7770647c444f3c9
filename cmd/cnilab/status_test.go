package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnilab/cnilab/datapath/api"
)

func nodeWith(name string, s *api.AgentStatus, raw string) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{}}}
	if s != nil {
		b, _ := json.Marshal(s)
		raw = string(b)
	}
	if raw != "" {
		n.Annotations[api.AgentStatusAnnotation] = raw
	}
	return n
}

func TestStatusRows(t *testing.T) {
	now := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
	ready := &api.AgentStatus{Ready: true, Kernel: "6.1.0", AttachMode: "tc", RoutingMode: "native",
		Features: map[string]bool{"tcx": false, "redirectPeer": true, "ringBuf": true}, Endpoints: 3, Policies: 2, Version: "v1", Updated: now.Add(-10 * time.Second)}
	notReady := &api.AgentStatus{Ready: false, Phase: "waiting for the node's podCIDR", Updated: now}
	stale := &api.AgentStatus{Ready: true, Updated: now.Add(-time.Hour)}
	rows := statusRows([]corev1.Node{
		nodeWith("n5", stale, ""), nodeWith("n1", ready, ""), nodeWith("n3", nil, ""),
		nodeWith("n2", notReady, ""), nodeWith("n4", nil, "{not json"),
	}, now)
	want := map[string]string{"n1": "ready", "n2": "not ready", "n3": "no status", "n4": "invalid", "n5": "stale"}
	for i, r := range rows {
		if r.Node != []string{"n1", "n2", "n3", "n4", "n5"}[i] {
			t.Fatalf("rows not sorted: %v", rows)
		}
		if r.State != want[r.Node] {
			t.Errorf("%s: state %q, want %q", r.Node, r.State, want[r.Node])
		}
	}
	if countReady(rows) != 1 || allReady(rows, now.Add(-time.Minute)) {
		t.Fatal("one ready agent of five counted as all ready")
	}
	if !allReady(rows[:1], now.Add(-time.Minute)) || allReady(rows[:1], now) {
		t.Fatal("allReady must require a report newer than the start")
	}
	var out bytes.Buffer
	renderStatus(&out, rows, now)
	for _, s := range []string{"n1", "tc", "native", "redirectPeer,ringBuf", "10s", "waiting for the node's podCIDR", "1/5 agents ready"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, out.String())
		}
	}
	if strings.Contains(out.String(), "tcx") {
		t.Errorf("a false feature is listed:\n%s", out.String())
	}
}
