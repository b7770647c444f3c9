package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/manifests"
)

func TestCheckDryRun(t *testing.T) {
	for _, tc := range []struct {
		dryRun, output string
		ok             bool
	}{
		{"none", "", true}, {"server", "", true}, {"client", "", true}, {"client", "yaml", true}, {"client", "json", true},
		{"all", "", false}, {"server", "yaml", false}, {"none", "json", false}, {"client", "table", false},
	} {
		if err := checkDryRun(tc.dryRun, tc.output); (err == nil) != tc.ok {
			t.Errorf("checkDryRun(%q, %q) = %v, want ok %v", tc.dryRun, tc.output, err, tc.ok)
		}
	}
}

func TestPrintObjects(t *testing.T) {
	objs, err := manifests.Render(manifests.Options{Sets: []manifests.Set{manifests.Cnilab}, RoutingMode: "vxlan"})
	if err != nil {
		t.Fatal(err)
	}
	var y bytes.Buffer
	if err := printObjects(&y, objs, "yaml"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(y.String(), "---\n"); n != len(objs) {
		t.Errorf("yaml: %d documents, want %d", n, len(objs))
	}
	for _, want := range []string{"kind: DaemonSet", "routing-mode: vxlan", "name: cnilab-agent"} {
		if !strings.Contains(y.String(), want) {
			t.Errorf("yaml lacks %q", want)
		}
	}
	var j bytes.Buffer
	if err := printObjects(&j, objs, "json"); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Kind  string           `json:"kind"`
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(j.Bytes(), &list); err != nil {
		t.Fatalf("json: %v", err)
	}
	if list.Kind != "List" || len(list.Items) != len(objs) {
		t.Errorf("json: kind %q with %d items, want a List of %d", list.Kind, len(list.Items), len(objs))
	}
}
