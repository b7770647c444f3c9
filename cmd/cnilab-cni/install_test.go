package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// installed checks that dir holds only cnilab-cni, with content want and
// mode 0755: no temporary file is left behind.
func installed(t *testing.T, dir string, want []byte) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "cnilab-cni" {
		t.Fatalf("%s holds %v, want only cnilab-cni", dir, entries)
	}
	p := filepath.Join(dir, "cnilab-cni")
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes (%v), want %d bytes", p, len(got), err, len(want))
	}
	if st, _ := os.Stat(p); st.Mode() != 0o755 {
		t.Fatalf("%s: mode %v, want 0755", p, st.Mode())
	}
}

func TestInstallPlugin(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	dir := filepath.Join(tmp, "host", "opt", "cni", "bin") // made by the install
	for _, content := range []string{"first build", "second, longer build"} {
		if err := os.WriteFile(src, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		dst, err := installPlugin(src, dir)
		if err != nil || dst != filepath.Join(dir, "cnilab-cni") {
			t.Fatalf("install: %q, %v", dst, err)
		}
		installed(t, dir, []byte(content))
	}

	// Failures name what failed and leave nothing behind.
	if _, err := installPlugin(filepath.Join(tmp, "missing"), dir); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing source: %v", err)
	}
	installed(t, dir, []byte("second, longer build"))
	if _, err := installPlugin(src, filepath.Join(src, "bin")); err == nil || !strings.Contains(err.Error(), "plugin directory") {
		t.Fatalf("directory below a file: %v", err)
	}
}

func TestInstallRequested(t *testing.T) {
	t.Setenv("CNI_COMMAND", "")
	os.Unsetenv("CNI_COMMAND")
	if !installRequested([]string{"cnilab-cni", "install", "/d"}) || installRequested([]string{"cnilab-cni"}) ||
		installRequested([]string{"cnilab-cni", "/d"}) {
		t.Fatal("install mode: wrong without CNI_COMMAND")
	}
	t.Setenv("CNI_COMMAND", "ADD")
	if installRequested([]string{"cnilab-cni", "install", "/d"}) {
		t.Fatal("install mode taken under a runtime (CNI_COMMAND set)")
	}
}

// TestInstallMode runs the built plugin as the DaemonSet's init container
// does: it copies its own executable.
func TestInstallMode(t *testing.T) {
	bin := build(t)
	self, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bin")
	cmd := exec.Command(bin, "install", dir)
	cmd.Env = []string{}
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "installed "+filepath.Join(dir, "cnilab-cni")) {
		t.Fatalf("install: %v\n%s", err, out)
	}
	installed(t, dir, self)

	cmd = exec.Command(bin, "install", dir, "extra")
	cmd.Env = []string{}
	if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "usage") {
		t.Fatalf("two directories: exit %d (%v), output %q; want usage, exit 2", cmd.ProcessState.ExitCode(), err, out)
	}

	// Under a runtime the arguments mean nothing: VERSION answers and
	// nothing is installed.
	other := filepath.Join(t.TempDir(), "bin")
	cmd = exec.Command(bin, "install", other)
	cmd.Env = []string{"CNI_COMMAND=VERSION"}
	if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), "supportedVersions") {
		t.Fatalf("VERSION with install arguments: %q, %v", out, err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("installed under a runtime: %v", err)
	}
}
