package outdir

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFind(t *testing.T) {
	t.Setenv("CNILAB_OUTPUT", "/somewhere/_output")
	if got := Find(); got != "/somewhere/_output" {
		t.Errorf("with CNILAB_OUTPUT: %s", got)
	}
	t.Setenv("CNILAB_OUTPUT", "")
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(filepath.Join(root, "_output"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(deep)
	if got, want := Find(), filepath.Join(root, "_output"); got != want {
		t.Errorf("from %s: %s, want %s", deep, got, want)
	}
}
