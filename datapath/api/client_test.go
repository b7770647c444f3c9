package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
)

func TestHealthz(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	c := NewClient(sock)
	ctx := context.Background()
	if _, _, err := c.Healthz(ctx); !errors.Is(err, ErrAgentUnreachable) {
		t.Fatalf("no agent: want ErrAgentUnreachable, got %v", err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var code atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != PathHealthz {
			http.NotFound(w, r)
			return
		}
		if c := int(code.Load()); c != http.StatusOK {
			http.Error(w, "not ready: reconciling", c)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	for _, tc := range []struct {
		code    int
		ready   bool
		wantErr bool
		detail  string
	}{
		{http.StatusServiceUnavailable, false, false, "not ready: reconciling"},
		{http.StatusOK, true, false, "ok"},
		{http.StatusInternalServerError, false, true, "not ready: reconciling"},
	} {
		code.Store(int32(tc.code))
		ready, detail, err := c.Healthz(ctx)
		if ready != tc.ready || (err != nil) != tc.wantErr || detail != tc.detail {
			t.Errorf("HTTP %d: got ready=%v detail=%q err=%v", tc.code, ready, detail, err)
		}
	}
}
