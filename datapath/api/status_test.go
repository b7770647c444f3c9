package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseAgentStatus(t *testing.T) {
	want := AgentStatus{Ready: true, Kernel: "6.12.0", AttachMode: "tcx", RoutingMode: "vxlan",
		Features: map[string]bool{"tcx": true, "redirectPeer": true, "ringBuf": true}, Endpoints: 3, Policies: 2,
		Version: "v0.1.0", Updated: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{`"ready":true`, `"kernel":"6.12.0"`, `"attachMode":"tcx"`, `"routingMode":"vxlan"`, `"features":{`,
		`"endpoints":3`, `"policies":2`, `"version":"v0.1.0"`, `"updated":"2025-01-02T03:04:05Z"`} {
		if !strings.Contains(string(b), f) {
			t.Errorf("%s lacks %s", b, f)
		}
	}
	if strings.Contains(string(b), "phase") {
		t.Errorf("%s: an empty phase is left out", b)
	}
	got, ok, err := ParseAgentStatus(map[string]string{AgentStatusAnnotation: string(b), "other": "x"})
	if err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := ParseAgentStatus(map[string]string{"other": "x"}); ok || err != nil {
		t.Errorf("absent: ok %v, err %v", ok, err)
	}
	if _, ok, err := ParseAgentStatus(nil); ok || err != nil {
		t.Errorf("no annotations: ok %v, err %v", ok, err)
	}
	if _, ok, err := ParseAgentStatus(map[string]string{AgentStatusAnnotation: "{"}); !ok || err == nil || !strings.Contains(err.Error(), AgentStatusAnnotation) {
		t.Errorf("bad JSON: ok %v, err %v", ok, err)
	}
}
