package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/lab/config"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
)

// TestLeaksFindsLeftovers plants what a badly removed lab leaves (a
// namespace and a state directory) and checks Leaks reports both, and
// nothing once they are gone.
func TestLeaksFindsLeftovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	t.Setenv("CNILAB_STATE_DIR", t.TempDir())
	name := fmt.Sprintf("leaktest%d", os.Getpid()%100000)
	links, err := HostLinks()
	if err != nil {
		t.Fatal(err)
	}
	if leaks, err := Leaks(name, links); err != nil || len(leaks) != 0 {
		t.Fatalf("before: %v, %v", leaks, err)
	}
	ns := config.NetnsPrefix + name + ".node-1"
	if err := labns.Create(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = labns.Delete(ns) })
	if err := os.MkdirAll(filepath.Join(stateDir(), name, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	leaks, err := Leaks(name, links)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(leaks, "\n")
	for _, want := range []string{"network namespace " + ns, "state directory " + filepath.Join(stateDir(), name)} {
		if !strings.Contains(got, want) {
			t.Errorf("Leaks does not report %q; it reports:\n%s", want, got)
		}
	}
	_ = labns.Delete(ns)
	_ = os.RemoveAll(filepath.Join(stateDir(), name))
	if leaks, err := Leaks(name, links); err != nil || len(leaks) != 0 {
		t.Errorf("after removal: %v, %v", leaks, err)
	}
}
