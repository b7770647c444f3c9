package loader

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Close while endpoint writes run: each write either completes or fails
// with ErrClosed, never half-done. The pinned maps, reopened, hold no
// veth-owner entry that its endpoint does not account for. (Before Close
// waited, a delete cut between the endpoint map and the owner map left the
// owner entry behind.)
func TestCloseWaitsForEndpointWrites(t *testing.T) {
	requireRoot(t)
	pin := bpffsDir(t)
	d := load(t, Options{PinPath: pin})
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	const writers = 4
	var wg sync.WaitGroup
	var mu sync.Mutex
	var writes int
	var unexpected []error
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			n := 0
			defer func() {
				mu.Lock()
				writes += n
				mu.Unlock()
			}()
			for {
				ip := netip.AddrFrom4([4]byte{10, 9, byte(w), byte(1 + rng.IntN(8))})
				var err error
				if rng.IntN(3) == 0 {
					err = d.DeleteEndpoint(ip)
				} else {
					// The pod's veth comes and goes: a new ifindex moves its owner entry.
					ifindex := 100*(w+1) + rng.IntN(16)
					err = d.UpsertEndpoint(ip, EndpointInfo{Ifindex: ifindex, PodMAC: mac, HostMAC: mac})
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					mu.Lock()
					unexpected = append(unexpected, err)
					mu.Unlock()
					return
				}
				n++
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	if len(unexpected) > 0 {
		t.Fatalf("writes racing Close failed with other than ErrClosed: %v", errors.Join(unexpected...))
	}
	if writes == 0 {
		t.Fatal("no write finished before Close: the test measured nothing")
	}
	t.Logf("%d endpoint writes before Close", writes)

	for what, err := range map[string]error{
		"UpsertEndpoint": d.UpsertEndpoint(netip.MustParseAddr("10.9.0.1"), EndpointInfo{Ifindex: 1, PodMAC: mac, HostMAC: mac}),
		"DeleteEndpoint": d.DeleteEndpoint(netip.MustParseAddr("10.9.0.1")),
		"SetPolicy":      d.SetPolicy(netip.MustParseAddr("10.9.0.1"), nil),
		"AttachEndpoint": d.AttachEndpoint(1),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	d2 := load(t, Options{PinPath: pin})
	eps, err := d2.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	stale, err := d2.PruneVethOwners()
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Errorf("veth-owner entries no endpoint accounts for after Close: %v (endpoints %v)", stale, eps)
	}
}
