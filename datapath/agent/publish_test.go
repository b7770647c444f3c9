package agent

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/cnilab/cnilab/datapath/api"
)

// publishAgent is a test agent whose client holds its Node n1 (unless
// noNode) with an annotation of someone else's, which publishing must keep.
func publishAgent(t *testing.T, noNode bool) (*Agent, *fake.Clientset) {
	t.Helper()
	a, _ := testAgent(t, false)
	cs := fake.NewClientset()
	if !noNode {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{"other": "kept"}}}
		if _, err := cs.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	a.client = cs
	a.statusMinInterval, a.statusRefresh = 10*time.Millisecond, time.Hour
	return a, cs
}

func nodeStatus(t *testing.T, a *Agent) (api.AgentStatus, bool) {
	t.Helper()
	n, err := a.client.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Annotations["other"] != "kept" {
		t.Errorf("annotations %v: another annotation was lost", n.Annotations)
	}
	s, ok, err := api.ParseAgentStatus(n.Annotations)
	if err != nil {
		t.Fatal(err)
	}
	return s, ok
}

// patches counts the agent's patches of nodes/status.
func patches(cs *fake.Clientset) int {
	n := 0
	for _, act := range cs.Actions() {
		if act.GetVerb() == "patch" && act.GetResource().Resource == "nodes" && act.GetSubresource() == "status" {
			n++
		}
	}
	return n
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAgentStatusDocument(t *testing.T) {
	a, _ := publishAgent(t, false)
	a.phase = "syncing nodes"
	a.cfg.Version = "v1.2.3"
	a.endpoints["c1"] = &endpointRecord{}
	a.policy = &policyEngine{stats: policyStats{Policies: 4}}
	now := time.Date(2025, 1, 2, 3, 4, 5, 678, time.FixedZone("x", 3600))
	if err := a.patchStatus(context.Background(), a.AgentStatus(now)); err != nil {
		t.Fatal(err)
	}
	s, ok := nodeStatus(t, a)
	want := api.AgentStatus{Ready: false, Phase: "syncing nodes", Kernel: kernelRelease(), AttachMode: "fake", RoutingMode: RoutingNative,
		Features: map[string]bool{"fake": true}, Endpoints: 1, Policies: 4, Version: "v1.2.3", Updated: now.UTC().Truncate(time.Second)}
	if !ok || !sameStatus(s, want) || !s.Updated.Equal(want.Updated) {
		t.Fatalf("published %+v, want %+v", s, want)
	}
	if s.Kernel == "" {
		t.Error("no kernel release")
	}
	// Ready: no phase. The annotation is compact JSON.
	a.ready = true
	if err := a.patchStatus(context.Background(), a.AgentStatus(now)); err != nil {
		t.Fatal(err)
	}
	n, _ := a.client.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
	raw := n.Annotations[api.AgentStatusAnnotation]
	if strings.ContainsAny(raw, "\n ") || strings.Contains(raw, "phase") || !strings.Contains(raw, `"ready":true`) {
		t.Errorf("annotation %s", raw)
	}
}

func TestPublishStatusLoop(t *testing.T) {
	a, cs := publishAgent(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.publishStatus(ctx) }()

	// On start.
	eventually(t, "the first status", func() bool { return patches(cs) == 1 })
	if s, ok := nodeStatus(t, a); !ok || s.Ready || s.Phase != "starting" {
		t.Fatalf("first status %+v", s)
	}
	// On readiness change.
	a.setReady(true)
	eventually(t, "the ready status", func() bool { s, _ := nodeStatus(t, a); return s.Ready })
	// Nothing changes: nothing is written.
	n := patches(cs)
	time.Sleep(100 * time.Millisecond)
	if patches(cs) != n {
		t.Fatalf("%d writes without a change", patches(cs)-n)
	}
	cancel()
	<-done

	// Other changes are written on the next tick; unchanged, only every refresh.
	a, cs = publishAgent(t, false)
	a.ready = true
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { defer close(done); a.publishStatus(ctx) }()
	eventually(t, "the first status", func() bool { return patches(cs) == 1 })
	time.Sleep(50 * time.Millisecond)
	if patches(cs) != 1 {
		t.Fatalf("%d writes without a change", patches(cs))
	}
	a.mu.Lock()
	a.endpoints["c1"] = &endpointRecord{}
	a.mu.Unlock()
	eventually(t, "the endpoint count", func() bool { s, _ := nodeStatus(t, a); return s.Endpoints == 1 })

	// Run marks the agent stopped, then ends the publisher: it writes that.
	a.mu.Lock()
	a.ready, a.phase = false, "stopped"
	a.mu.Unlock()
	cancel()
	<-done
	if s, _ := nodeStatus(t, a); s.Ready || s.Phase != "stopped" {
		t.Fatalf("last status %+v", s)
	}

	// Unchanged, the status is rewritten every refresh, for its time.
	a, cs = publishAgent(t, false)
	a.statusRefresh = 30 * time.Millisecond
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { defer close(done); a.publishStatus(ctx) }()
	eventually(t, "refreshes", func() bool { return patches(cs) >= 3 })
	cancel()
	<-done
}

// logRecords keeps the agent's log records.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r)
	l.mu.Unlock()
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }
func (l *logRecords) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level == level && strings.HasPrefix(r.Message, msg) {
			n++
		}
	}
	return n
}

func TestPublishStatusFailuresAreNotFatal(t *testing.T) {
	// No Node yet: the first writes fail, are logged once, and retried.
	a, cs := publishAgent(t, true)
	logs := &logRecords{}
	a.log = slog.New(logs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); a.publishStatus(ctx) }()
	eventually(t, "retries", func() bool { return patches(cs) >= 3 })
	if w := logs.count(slog.LevelWarn, "publish agent status"); w != 1 {
		t.Fatalf("%d warnings for one repeated error, want 1", w)
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{"other": "kept"}}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the status once the Node exists", func() bool { _, ok := nodeStatus(t, a); return ok })
	eventually(t, "the recovery logged", func() bool { return logs.count(slog.LevelInfo, "published agent status") == 1 })
	cancel()
	<-done
}

func TestPublishStatusForbidden(t *testing.T) {
	a, cs := publishAgent(t, false)
	cs.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "nodes/status"}, "n1", nil)
	})
	err := a.patchStatus(context.Background(), a.AgentStatus(time.Now()))
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "resources [nodes/status], verbs [patch]") {
		t.Fatalf("err %v: want forbidden, naming the rule", err)
	}
}

func TestSameStatus(t *testing.T) {
	x := api.AgentStatus{Ready: true, Features: map[string]bool{"tcx": true}, Updated: time.Unix(1, 0)}
	y := x
	y.Updated = time.Unix(100, 0)
	y.Features = map[string]bool{"tcx": true}
	if !sameStatus(x, y) {
		t.Error("statuses differing only in time differ")
	}
	y.Features = map[string]bool{"tcx": false}
	if sameStatus(x, y) {
		t.Error("different features are the same")
	}
}
