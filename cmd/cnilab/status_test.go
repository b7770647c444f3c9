package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

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
		t.Fatal("allReady with a since must require a report newer than it")
	}
	if !allReady(rows[:1], time.Time{}) {
		t.Fatal("allReady without a since must take any report that is not stale")
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

// fakeNodes is a clientset holding nodes whose agents published s (nil: no
// status) under their names.
func fakeNodes(statuses map[string]*api.AgentStatus) *fake.Clientset {
	var objs []runtime.Object
	for name, s := range statuses {
		n := nodeWith(name, s, "")
		objs = append(objs, &n)
	}
	return fake.NewSimpleClientset(objs...)
}

func TestStatusWaitReturnsAtOnceOnReadyAgentsWithOldReports(t *testing.T) {
	old := time.Now().Add(-2 * time.Minute)
	client := fakeNodes(map[string]*api.AgentStatus{
		"node-0": {Ready: true, RoutingMode: "native", Updated: old},
		"node-1": {Ready: true, RoutingMode: "native", Updated: old},
	})
	var out bytes.Buffer
	start := time.Now()
	err := runStatus(context.Background(), client, statusOptions{wait: true, timeout: time.Minute, interval: 50 * time.Millisecond}, &out)
	if err != nil {
		t.Fatalf("status --wait on ready agents: %v\n%s", err, out.String())
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("status --wait took %s on agents that were already ready (reports 2 minutes old)", took)
	}
	if !strings.Contains(out.String(), "2/2 agents ready") {
		t.Errorf("output lacks 2/2 agents ready:\n%s", out.String())
	}
}

func TestStatusWaitFailsAtTimeoutNamingStaleNode(t *testing.T) {
	client := fakeNodes(map[string]*api.AgentStatus{
		"node-0": {Ready: true, Updated: time.Now()},
		"node-1": {Ready: true, Updated: time.Now().Add(-statusStaleAfter - time.Minute)},
		"node-2": nil,
	})
	var out bytes.Buffer
	start := time.Now()
	err := runStatus(context.Background(), client, statusOptions{wait: true, timeout: 300 * time.Millisecond, interval: 50 * time.Millisecond}, &out)
	took := time.Since(start)
	if err == nil {
		t.Fatalf("status --wait accepted a stale report and a node without status:\n%s", out.String())
	}
	if took < 300*time.Millisecond {
		t.Errorf("status --wait gave up after %s, before its 300ms timeout", took)
	}
	for _, s := range []string{"node-1 (stale)", "node-2 (no status)", "1/3 agents ready after 300ms"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
	if strings.Contains(err.Error(), "node-0") {
		t.Errorf("error %q names the ready node", err)
	}
}

func TestStatusWithoutWaitFailsAtOnce(t *testing.T) {
	client := fakeNodes(map[string]*api.AgentStatus{"node-0": {Ready: false, Phase: "starting", Updated: time.Now()}})
	var out bytes.Buffer
	start := time.Now()
	err := runStatus(context.Background(), client, statusOptions{timeout: time.Minute, interval: 50 * time.Millisecond}, &out)
	if err == nil || !strings.Contains(err.Error(), "node-0 (not ready)") {
		t.Fatalf("status on a not-ready agent: err %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("status without --wait waited %s", time.Since(start))
	}
}

func TestInstallIgnoresReportsOlderThanTheInstall(t *testing.T) {
	start := time.Now()
	rows := statusRows([]corev1.Node{
		nodeWith("node-0", &api.AgentStatus{Ready: true, RoutingMode: "native", Updated: start.Add(-time.Minute)}, ""),
	}, start)
	if installed(rows, start, "native") {
		t.Fatal("install took a ready report from before the install began")
	}
	rows = statusRows([]corev1.Node{
		nodeWith("node-0", &api.AgentStatus{Ready: true, RoutingMode: "native", Updated: start.Add(time.Second)}, ""),
	}, start.Add(time.Second))
	if !installed(rows, start, "native") {
		t.Fatal("install did not take a ready report made after it began")
	}
	if installed(rows, start, "vxlan") {
		t.Fatal("install took an agent in another routing mode")
	}
}

func TestIntListEmptyMeansNone(t *testing.T) {
	l := intList{1, 2}
	if err := l.Set(""); err != nil || len(l) != 0 {
		t.Fatalf("Set(\"\") = %v, %v; want an empty list", l, err)
	}
	if err := l.Set("0, 100,1000"); err != nil || l.String() != "0,100,1000" {
		t.Fatalf("Set(\"0, 100,1000\") = %v, %v", l, err)
	}
	if err := l.Set("-1"); err == nil {
		t.Fatal("Set(\"-1\") accepted a negative count")
	}
}
