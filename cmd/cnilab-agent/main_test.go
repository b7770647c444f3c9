package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--version"}, &out, &errb); code != 0 || strings.TrimSpace(out.String()) != "cnilab-agent "+version {
		t.Fatalf("--version: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// Outside a pod and without --kubeconfig the agent stops at once and says
// what it needs, rather than starting without a client.
func TestNoKubeconfigOutsideCluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	var out, errb bytes.Buffer
	code := run([]string{"--node-name=n1", "--state-dir=" + t.TempDir()}, &out, &errb)
	msg := errb.String()
	if code != 2 || !strings.Contains(msg, "--kubeconfig") || !strings.Contains(msg, "in-cluster") {
		t.Fatalf("exit %d, stderr %q: want 2 and an error naming --kubeconfig and the in-cluster configuration", code, msg)
	}
}

func TestBadKubeconfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "missing")
	var out, errb bytes.Buffer
	if code := run([]string{"--node-name=n1", "--kubeconfig=" + p}, &out, &errb); code != 2 || !strings.Contains(errb.String(), p) {
		t.Fatalf("exit %d, stderr %q: want 2 and the kubeconfig's path", code, errb.String())
	}
}

func TestBadFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--nope"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d", code)
	}
}
