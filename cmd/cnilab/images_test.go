package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImagesBuild(t *testing.T) {
	out := t.TempDir()
	t.Setenv("CNILAB_OUTPUT", out)
	if err := os.MkdirAll(filepath.Join(out, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "bin", "cnilab-probe"), []byte("fake"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		c := imagesBuildCommand()
		var buf bytes.Buffer
		c.SetOut(&buf)
		c.SetErr(&buf)
		c.SetArgs(args)
		err := c.ExecuteContext(context.Background())
		return buf.String(), err
	}

	progress, err := run("--only", "cnilab-probe")
	if err != nil || !strings.Contains(progress, "cnilab-probe: wrote") {
		t.Fatalf("build: %v\n%s", err, progress)
	}
	for _, f := range []string{"cnilab-probe.tar", "images.json"} {
		if _, err := os.Stat(filepath.Join(out, "images", f)); err != nil {
			t.Errorf("default output: %v", err)
		}
	}

	_, err = run("--only", "nginx", "--output", t.TempDir())
	var usage usageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "cnilab-probe") {
		t.Errorf("unknown image: %v; want a usage error listing the images", err)
	}
	_, err = run("--only", "coredns", "--output", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Errorf("missing coredns: %v; want the make target", err)
	}
}
