package kernels

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFetchDebian downloads and unpacks the 6.1 Debian kernel into a
// temporary cache. It needs apt and the Debian archive, so it runs only with
// CNILAB_KERNEL_FETCH=1.
func TestFetchDebian(t *testing.T) {
	if os.Getenv("CNILAB_KERNEL_FETCH") != "1" {
		t.Skip("downloads a Debian kernel package: set CNILAB_KERNEL_FETCH=1 to run")
	}
	for _, p := range []string{"apt-get", "apt-cache", "dpkg"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed: Debian kernels need apt", p)
		}
	}
	e := catalogEntry(t, "6.1")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cache := t.TempDir()
	var log strings.Builder
	start := time.Now()
	k, err := Fetch(ctx, e, cache, &log)
	t.Logf("progress (%s):\n%s", time.Since(start).Round(time.Second), log.String())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Release, "6.1.") || !strings.HasSuffix(k.Release, "-cloud-amd64") ||
		k.Vmlinuz != filepath.Join(cache, "6.1", "boot", "vmlinuz-"+k.Release) ||
		k.ModulesDir != filepath.Join(cache, "6.1", "lib", "modules", k.Release) ||
		!strings.HasPrefix(k.Origin, "linux-image-6.1.") || !strings.HasPrefix(k.OriginDigest, "sha256:") {
		t.Fatalf("Fetch = %+v", k)
	}
	if r, err := ReleaseFromBzImage(k.Vmlinuz); err != nil || r != k.Release {
		t.Errorf("ReleaseFromBzImage = %q, %v", r, err)
	}
	formats, err := ModuleFormats(k.ModulesDir)
	if err != nil || len(formats) == 0 {
		t.Errorf("ModuleFormats = %v, %v", formats, err)
	}
	t.Logf("kernel %+v, modules %v", k, formats)
	k2, err := Fetch(ctx, e, cache, nil)
	if err != nil || !k2.Cached || k2.SHA256 != k.SHA256 {
		t.Errorf("second Fetch = %+v, %v; want the cache", k2, err)
	}
}
