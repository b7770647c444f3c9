package agent

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func baseConfig(t *testing.T) Config {
	return Config{NodeName: "n1", StateDir: t.TempDir(), BPFFSDir: "/x", Socket: "/x.sock", RoutingMode: RoutingNative, UnderlayDevice: "eth0"}
}

func stubInCluster(t *testing.T, rc *rest.Config, err error) {
	t.Helper()
	orig := inClusterConfig
	inClusterConfig = func() (*rest.Config, error) { return rc, err }
	t.Cleanup(func() { inClusterConfig = orig })
}

func TestNewInClusterWithoutKubeconfig(t *testing.T) {
	stubInCluster(t, &rest.Config{Host: "https://10.96.0.1:443", BearerToken: "t"}, nil)
	a, err := New(baseConfig(t), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if a.client == nil {
		t.Fatal("no client from the in-cluster configuration")
	}
}

func TestNewNeitherKubeconfigNorInCluster(t *testing.T) {
	stubInCluster(t, nil, rest.ErrNotInCluster)
	_, err := New(baseConfig(t), quietLog())
	if err == nil || !errors.Is(err, rest.ErrNotInCluster) || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Fatalf("err %v: want one that wraps rest.ErrNotInCluster and names --kubeconfig", err)
	}
	// The real in-cluster loader, outside a pod, fails the same way.
	inClusterConfig = rest.InClusterConfig
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	if _, err := New(baseConfig(t), quietLog()); !errors.Is(err, rest.ErrNotInCluster) {
		t.Fatalf("err %v: want rest.ErrNotInCluster", err)
	}
}

func TestNewKubeconfig(t *testing.T) {
	stubInCluster(t, nil, errors.New("in-cluster configuration must not be used with --kubeconfig"))
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	const doc = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(kc, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(t)
	cfg.Kubeconfig = kc
	if a, err := New(cfg, quietLog()); err != nil || a.client == nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	cfg.Kubeconfig = kc + ".missing"
	if _, err := New(cfg, quietLog()); err == nil || !strings.Contains(err.Error(), cfg.Kubeconfig) {
		t.Fatalf("missing kubeconfig: %v, want an error naming it", err)
	}
}
