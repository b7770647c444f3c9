package netns

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/lab/config"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
)

// A bring-up that cannot succeed says why in one line and makes nothing.
func TestCreateRefusesCleanly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the netns provider checks for root before anything else")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	emptyTools := t.TempDir()
	cases := []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"missing tool", func(c *config.Config) { c.ToolsDir = emptyTools }, "etcd not found in " + emptyTools + ": run 'make tools'"},
		{"port taken", func(c *config.Config) { c.APIPort = taken.Addr().(*net.TCPAddr).Port }, "is already in use"},
		{"bad nodes", func(c *config.Config) { c.Nodes = -1 }, "invalid node count"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Provider{StateDir: t.TempDir()}
			cfg := config.Default()
			cfg.Name = fmt.Sprintf("refuse%d", os.Getpid()%100000)
			tc.mutate(&cfg)
			_, err := p.Create(context.Background(), cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("want a one-line error containing %q, got %v", tc.want, err)
			}
			if _, serr := os.Stat(filepath.Join(p.StateDir, cfg.Name)); serr == nil {
				t.Error("state directory was made")
			}
			if nss, _ := labns.List(cfg.NetnsPrefix()); len(nss) > 0 {
				t.Errorf("namespaces were made: %v", nss)
			}
		})
	}
}
