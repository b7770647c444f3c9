package flows

import (
	"context"
	"sync"
	"sync/atomic"
)

// DefaultCapacity is the number of flows a Store keeps by default.
const DefaultCapacity = 8192

// DefaultFollowBuffer is how many flows a follower may lag behind before
// it loses flows.
const DefaultFollowBuffer = 1024

// Store keeps the last flows in a ring and hands new ones to followers.
// It is safe for concurrent use. Add never blocks: a follower whose buffer
// is full loses the flow, counted in SubscriberDrops.
type Store struct {
	mu      sync.Mutex
	ring    []Flow
	next    int // index of the next write
	full    bool
	subs    map[*subscriber]struct{}
	buf     int
	dropped atomic.Uint64
}

type subscriber struct {
	filter Filter
	ch     chan Flow
}

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithFollowBuffer sets how many flows each follower may lag behind.
func WithFollowBuffer(n int) StoreOption {
	return func(s *Store) {
		if n > 0 {
			s.buf = n
		}
	}
}

// NewStore returns a Store keeping the last capacity flows
// (DefaultCapacity if capacity <= 0).
func NewStore(capacity int, opts ...StoreOption) *Store {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	s := &Store{
		ring: make([]Flow, capacity),
		subs: make(map[*subscriber]struct{}),
		buf:  DefaultFollowBuffer,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Add stores f, evicting the oldest flow when full, and sends it to the
// followers it matches.
func (s *Store) Add(f Flow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring[s.next] = f
	s.next++
	if s.next == len(s.ring) {
		s.next, s.full = 0, true
	}
	for sub := range s.subs {
		if !sub.filter.Match(&f) {
			continue
		}
		select {
		case sub.ch <- f:
		default:
			s.dropped.Add(1)
		}
	}
}

// Len is the number of flows stored.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full {
		return len(s.ring)
	}
	return s.next
}

// followers is the number of active followers.
func (s *Store) followers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// SubscriberDrops is the number of flows followers lost by being too slow.
func (s *Store) SubscriberDrops() uint64 { return s.dropped.Load() }

// Query returns the stored flows f selects, oldest first (the last
// f.Last of them if set).
func (s *Store) Query(f Filter) []Flow {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.query(&f)
}

// query walks the ring newest first, keeping at most f.Last flows.
func (s *Store) query(f *Filter) []Flow {
	n := s.next
	if s.full {
		n = len(s.ring)
	}
	var out []Flow
	for i := 0; i < n && (f.Last == 0 || len(out) < f.Last); i++ {
		fl := &s.ring[(s.next-1-i+len(s.ring))%len(s.ring)]
		if f.Match(fl) {
			out = append(out, *fl)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Follow returns a channel of the flows f selects: first, if f.Last or
// f.Since is set, the stored ones Query would return, then each new one
// as it is added. The channel is closed when ctx is done. A reader that
// lags more than the follow buffer behind loses flows.
func (s *Store) Follow(ctx context.Context, f Filter) <-chan Flow {
	s.mu.Lock()
	var past []Flow
	if f.Last > 0 || !f.Since.IsZero() {
		past = s.query(&f)
	}
	sub := &subscriber{filter: f, ch: make(chan Flow, s.buf+len(past))}
	for _, fl := range past {
		sub.ch <- fl
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()

	go func() {
		<-ctx.Done()
		s.mu.Lock()
		delete(s.subs, sub)
		close(sub.ch)
		s.mu.Unlock()
	}()
	return sub.ch
}
