package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestLoadNetpolCases(t *testing.T) {
	_, here, _, _ := runtime.Caller(0)
	cases, err := LoadNetpolCases(filepath.Join(filepath.Dir(here), "..", "examples", "netpol"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 5 || cases[0].Name != "01-deny-all-x" || len(cases[4].Policies) != 2 {
		t.Fatalf("cases %+v", cases)
	}
	if ns := cases[2].Policies[0].Namespace; ns != "y" {
		t.Fatalf("namespace y decoded as %q (YAML 1.1 would say true)", ns)
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"no-ns.yaml":   "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {}}\n",
		"kind.yaml":    "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\n",
		"cidr.yaml":    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}]\n",
		"unknown.yaml": "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelectr: {}}\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadNetpolCases(p)
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: want an error naming the file, got %v", name, err)
		}
	}
}
