package netns

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cnilab/cnilab/lab/config"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
	"github.com/cnilab/cnilab/lab/internal/proc"
	"github.com/cnilab/cnilab/lab/probe"
)

// TestBareNetwork brings up the bare network, runs a short TCP_RR on both
// placements through it, and checks that Delete leaves no namespace,
// process or state behind.
func TestBareNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	bin, _, _ := config.FindBinDirs()
	if _, err := os.Stat(filepath.Join(bin, "cnilab-probe")); err != nil {
		t.Skipf("needs cnilab-probe in %s (make build): %v", bin, err)
	}
	p := Provider{StateDir: t.TempDir()}
	name := fmt.Sprintf("baretest%d", os.Getpid()%100000)
	b, err := p.CreateBare(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Delete(name) })
	if _, err := p.CreateBare(context.Background(), name); err == nil {
		t.Error("a second bare network of the same name was created")
	}
	for _, same := range []bool{true, false} {
		exec, server := b.ExecCross, b.CrossServer
		if same {
			exec, server = b.ExecSame, b.SameServer
		}
		r, err := exec(context.Background(), []string{"cnilab-probe", "load", "--mode", "TCP_RR", "--warmup", "0s", "--duration", "200ms", fmt.Sprintf("%s:%d", server, BarePort)})
		if err != nil {
			t.Fatal(err)
		}
		var lr probe.LoadResult
		if err := json.Unmarshal(r.Stdout, &lr); err != nil || r.ExitCode != 0 || lr.Transactions == 0 {
			t.Errorf("TCP_RR same-node=%v: exit %d, %s %s", same, r.ExitCode, r.Stdout, r.Stderr)
		}
	}
	if err := p.Delete(name); err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{Name: name}
	if left, _ := labns.List(cfg.NetnsPrefix()); len(left) > 0 {
		t.Errorf("namespaces left after Delete: %v", left)
	}
	if pids, _ := proc.Tagged(name); len(pids) > 0 {
		t.Errorf("processes left after Delete: %v", pids)
	}
	if _, err := os.Stat(filepath.Join(p.StateDir, name)); !os.IsNotExist(err) {
		t.Errorf("state left after Delete: %v", err)
	}
}
