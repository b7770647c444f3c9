package probe

import (
	"context"
	"testing"
	"time"
)

// A literal address resolves to itself without any server: the result's
// shape without depending on this machine's resolver.
func TestResolveLiteral(t *testing.T) {
	r := Resolve(context.Background(), "10.96.0.10", time.Second)
	if !r.Success || len(r.Addresses) != 1 || r.Addresses[0] != "10.96.0.10" || r.Error != "" {
		t.Errorf("Resolve(10.96.0.10) = %+v", r)
	}
}

func TestResolveGivesUpAtTheTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := Resolve(ctx, "kubernetes.default.svc.cluster.local", time.Second)
	if r.Success || !r.Timeout || r.Error == "" {
		t.Errorf("Resolve with a cancelled context = %+v, want a timeout", r)
	}
}
