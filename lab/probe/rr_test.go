package probe

import (
	"context"
	"testing"
	"time"
)

func TestRRCountsTransactions(t *testing.T) {
	s, err := Listen(ServeConfig{Name: "srv", Address: "127.0.0.1", TCP: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Serve(ctx) }()
	r := RR(ctx, s.Endpoints()[0].Addr, 50*time.Millisecond, 200*time.Millisecond)
	if r.Error != "" || r.Transactions < 10 || r.PerSecond <= 0 || r.P99US < r.P50US {
		t.Fatalf("%+v", r)
	}
	if r := RR(ctx, "127.0.0.1:1", 0, 10*time.Millisecond); r.Error == "" {
		t.Fatal("RR to a closed port reported no error")
	}
}
