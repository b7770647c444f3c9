package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadExampleCases(t *testing.T) {
	cases, err := LoadCases("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 3 {
		t.Fatalf("loaded %d cases, want 3", len(cases))
	}
	for _, c := range cases {
		if !c.HasTag("example") {
			t.Errorf("%s: no example tag", c.Name)
		}
		if err := CheckExpectations(c, NewStandardModel()); err != nil {
			t.Error(err)
		}
	}
	// YAML 1.2: `ns: y` is the string "y", not true.
	if got := cases[0].Steps[1].CreatePolicy.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["ns"]; got != "y" {
		t.Errorf("ns label = %q, want y", got)
	}
	step := cases[1].Steps[0]
	if got := step.CreatePolicy.Spec.Egress[0].Ports[0].Port.StrVal; got != "serve-80-tcp" {
		t.Errorf("named port = %q", got)
	}
	if got := cases[2].Steps[1].ProbeList(); len(got) != 2 || got[0] != ICMP || got[1] != TCP80 {
		t.Errorf("probes = %v", got)
	}
	if got := cases[2].Steps[0].ProbeList(); len(got) != len(DefaultProbes()) {
		t.Errorf("default probes = %v", got)
	}
}

func TestLoadRejects(t *testing.T) {
	for name, body := range map[string]string{
		"unknown field":  "name: u\nsteps:\n- createPolicee: {}\n",
		"bad probe":      "name: u\nsteps:\n- probes: [80/ICMP]\n",
		"invalid policy": "name: u\nsteps:\n- createPolicy: {metadata: {name: p, namespace: x}, spec: {podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]}}\n",
		"bad name":       "name: Upper Case\nsteps:\n- {}\n",
		"no steps":       "name: u\n",
		"duplicate":      "- {name: u, steps: [{}]}\n- {name: u, steps: [{}]}\n",
		"two actions":    "name: u\nsteps:\n- {deletePod: {namespace: x, name: a}, setPodLabels: {namespace: x, name: b}}\n",
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadCases(dir)
		switch {
		case err == nil:
			t.Errorf("%s: accepted", name)
		case !strings.Contains(err.Error(), "c.yaml:"):
			t.Errorf("%s: error does not say where: %v", name, err)
		default:
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestLoadJSON(t *testing.T) {
	dir := t.TempDir()
	body := `{"name": "json/deny", "steps": [{"createPolicy": {"metadata": {"name": "d", "namespace": "y"}, "spec": {"podSelector": {}}}, "probes": ["81/SCTP"]}]}`
	if err := os.WriteFile(filepath.Join(dir, "c.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cases, err := LoadCases(dir)
	if err != nil || len(cases) != 1 || cases[0].Steps[0].Probes[0] != SCTP81 {
		t.Fatalf("%v %+v", err, cases)
	}
}
