package kernels

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReleaseFromBzImage(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(f, fakeBzImage("6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := ReleaseFromBzImage(f); err != nil || r != "6.1.0-56-cloud-amd64" {
		t.Errorf("ReleaseFromBzImage = %q, %v", r, err)
	}
	for name, b := range map[string][]byte{
		"short":     []byte("MZ"),
		"no HdrS":   make([]byte, 0x1000),
		"no string": func() []byte { b := fakeBzImage("x"); b[0x20E], b[0x20F] = 0, 0; return b }(),
		"garbage":   fakeBzImage("not a version"),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if r, err := ReleaseFromBzImage(p); err == nil {
			t.Errorf("%s: ReleaseFromBzImage = %q, want an error", name, r)
		}
	}
}

// TestReleaseFromRealBzImage reads the release of every kernel fetched into
// the default cache and compares it with the one its modules directory names.
func TestReleaseFromRealBzImage(t *testing.T) {
	manifests, _ := filepath.Glob(filepath.Join(DefaultCacheDir(), "*", ManifestFile))
	tested := 0
	for _, mf := range manifests {
		b, err := os.ReadFile(mf)
		if err != nil {
			t.Fatal(err)
		}
		var m manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		r, err := ReleaseFromBzImage(filepath.Join(filepath.Dir(mf), m.Vmlinuz))
		if err != nil {
			t.Errorf("%s: %v", m.Name, err)
			continue
		}
		if r != m.Release {
			t.Errorf("%s: bzImage release %q, modules release %q", m.Name, r, m.Release)
		}
		t.Logf("%s: %s", m.Name, r)
		tested++
	}
	if tested == 0 {
		t.Skipf("no fetched kernel in %s (run cnilab kernels fetch 6.1)", DefaultCacheDir())
	}
}

func TestLocalKernel(t *testing.T) {
	dir := t.TempDir()
	vmlinuz := filepath.Join(dir, "boot", "vmlinuz-6.6.0-local")
	modules := filepath.Join(dir, "lib", "modules", "6.6.0-local")
	if err := os.MkdirAll(filepath.Join(modules, "kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(vmlinuz), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vmlinuz, fakeBzImage("6.6.0-local #1"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CNILAB_KERNEL_VMLINUZ", vmlinuz)
	t.Setenv("CNILAB_KERNEL_MODULES", modules)
	e := catalogEntry(t, "local")
	k, err := Fetch(context.Background(), e, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if k.Release != "6.6.0-local" || k.Vmlinuz != vmlinuz || k.ModulesDir != modules || k.Dir != "" || len(k.SHA256) != 64 {
		t.Errorf("local kernel = %+v", k)
	}
	// The modules root or lib/modules itself name the same release.
	for _, m := range []string{dir, filepath.Join(dir, "lib", "modules")} {
		t.Setenv("CNILAB_KERNEL_MODULES", m)
		if k, err := Fetch(context.Background(), e, "", nil); err != nil || k.ModulesDir != modules {
			t.Errorf("modules %s: %+v, %v", m, k, err)
		}
	}
	// Without modules the release comes from the bzImage header.
	t.Setenv("CNILAB_KERNEL_MODULES", "")
	noMod := e
	noMod.Source.Modules = ""
	if k, err := Fetch(context.Background(), noMod, "", nil); err != nil || k.Release != "6.6.0-local" || k.ModulesDir != "" {
		t.Errorf("without modules: %+v, %v", k, err)
	}
	// So does an unset CNILAB_KERNEL_MODULES.
	if k, err := Fetch(context.Background(), e, "", nil); err != nil || k.Release != "6.6.0-local" || k.ModulesDir != "" {
		t.Errorf("CNILAB_KERNEL_MODULES unset: %+v, %v", k, err)
	}
	// An unset vmlinuz variable, a missing file, mismatched releases are errors.
	t.Setenv("CNILAB_KERNEL_VMLINUZ", "")
	var envErr *EnvError
	if _, err := Fetch(context.Background(), e, "", nil); !errors.As(err, &envErr) || envErr.Vars[0] != "CNILAB_KERNEL_VMLINUZ" {
		t.Errorf("unset variable: %v", err)
	}
	partial := e
	partial.Source.Modules = "${CNILAB_KERNEL_MODULES}/lib/modules/6.6.0-local"
	t.Setenv("CNILAB_KERNEL_VMLINUZ", vmlinuz)
	if _, err := Fetch(context.Background(), partial, "", nil); !errors.As(err, &envErr) {
		t.Errorf("unset variable inside a modules path: %v", err)
	}
	t.Setenv("CNILAB_KERNEL_MODULES", modules)
	t.Setenv("CNILAB_KERNEL_VMLINUZ", filepath.Join(dir, "missing"))
	if _, err := Fetch(context.Background(), e, "", nil); err == nil || !strings.Contains(err.Error(), "not a readable kernel image") {
		t.Errorf("missing vmlinuz: %v", err)
	}
	other := filepath.Join(dir, "vmlinuz-other")
	if err := os.WriteFile(other, fakeBzImage("6.12.0-other #1"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CNILAB_KERNEL_VMLINUZ", other)
	if _, err := Fetch(context.Background(), e, "", nil); err == nil || !strings.Contains(err.Error(), "modules are for 6.6.0-local") {
		t.Errorf("mismatched release: %v", err)
	}
}
