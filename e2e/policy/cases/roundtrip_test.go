package cases

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	pol "github.com/cnilab/cnilab/e2e/policy"
)

// TestCatalogRoundTripsThroughFiles writes the whole catalog as a JSON
// file, loads it back with LoadCases and checks nothing changed: every
// case can be written as a user case file.
func TestCatalogRoundTripsThroughFiles(t *testing.T) {
	cs := AllCases()
	want, err := json.MarshalIndent(cs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "catalog.json"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := pol.LoadCases(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(loaded, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("catalog changed through a file (%d bytes written, %d re-marshalled)", len(want), len(got))
	}
}
