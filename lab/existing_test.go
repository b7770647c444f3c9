package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/lab/internal/kube"
)

// writeKubeconfig writes a kubeconfig whose current cluster is cluster at
// server.
func writeKubeconfig(t *testing.T, cluster, server string) *kube.Kubeconfig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	data := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- {name: %s, cluster: {server: %q, insecure-skip-tls-verify: true}}
users:
- {name: admin, user: {token: t}}
contexts:
- {name: c, context: {cluster: %s, user: admin}}
current-context: c
`, cluster, server, cluster)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	kc, err := kube.LoadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

func TestLocalLabRunner(t *testing.T) {
	state := t.TempDir()
	t.Setenv("CNILAB_STATE_DIR", state)
	cfg := config.Default()
	cfg.Name, cfg.CNI, cfg.APIPort, cfg.StateDir = "src", "cnilab", 40123, state
	if err := os.MkdirAll(cfg.Dir(), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(cfg.Dir(), "lab.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	r, err := localLabRunner(writeKubeconfig(t, "cnilab-src", "https://127.0.0.1:40123"))
	if err != nil {
		t.Fatal(err)
	}
	lr, ok := r.(labRunner)
	if !ok || lr.lab.Name() != "src" || lr.lab.CNI() != "cnilab" {
		t.Fatalf("the lab's kubeconfig: runner %#v", r)
	}
	for _, tc := range []struct{ why, cluster, server string }{
		{"another port (an older lab of that name)", "cnilab-src", "https://127.0.0.1:40124"},
		{"not loopback", "cnilab-src", "https://10.1.2.3:40123"},
		{"no lab of that name here", "cnilab-gone", "https://127.0.0.1:40123"},
		{"not a lab's cluster name", "kind-cnilab-src", "https://127.0.0.1:40123"},
		{"a prefix alone", "cnilab-", "https://127.0.0.1:40123"},
	} {
		r, err := localLabRunner(writeKubeconfig(t, tc.cluster, tc.server))
		if err != nil || r != nil {
			t.Errorf("%s: runner %#v, %v: want the API server's exec", tc.why, r, err)
		}
	}
}

func TestExistingProviderOptions(t *testing.T) {
	p, err := NewProvider("existing", nil)
	if err != nil || p.Name() != "existing" {
		t.Fatalf("provider %v %v", p, err)
	}
	_, err = p.Create(t.Context(), WithName("t"), WithCNI("cnilab"), WithKubeconfig("/nonexistent"))
	if err == nil || !strings.Contains(err.Error(), `use CNI "existing"`) {
		t.Errorf("existing with a CNI to install: %v", err)
	}
	_, err = p.Create(t.Context(), WithName("t"), WithKubeconfig(filepath.Join(t.TempDir(), "missing")))
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing kubeconfig: %v", err)
	}
	k, err := NewProvider("kind", nil)
	if err != nil || k.Name() != "kind" {
		t.Fatalf("kind provider %v %v", k, err)
	}
	_, err = k.Create(t.Context(), WithName("t"), WithCNI(config.ExistingCNI))
	if err == nil || !strings.Contains(err.Error(), "only for the existing provider") {
		t.Errorf("kind with CNI existing: %v", err)
	}
}
