package policy

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strconv"
)

// ErrIdentitySpaceExhausted is returned by Compile when more identities are
// live than [MinIdentity, MaxIdentity] holds.
var ErrIdentitySpaceExhausted = errors.New("policy: identity space exhausted")

// Allocator numbers identity keys and remembers the numbers between calls to
// Compile, so a key that persists keeps its identity (a policy change that
// leaves a pod's key alone does not renumber it).
//
// An identity key is a canonical string (see podKey, cidrKey, remoteKey):
// equal keys get equal identities. At each Compile the allocator releases
// the keys that are no longer present and numbers the new ones in sorted
// order. Numbers come from a counter that only moves forward (wrapping to
// MinIdentity after MaxIdentity, skipping live numbers), so a released
// identity is not handed to a different key until the space wraps: a
// number never changes meaning between two consecutive Results, which the
// ordering of Delta.Apply relies on.
//
// The zero value is ready to use. An Allocator is not safe for concurrent
// use; an agent has one, used by its single compile loop.
type Allocator struct {
	ids  map[string]uint32
	keys map[uint32]string
	next uint32
}

// NewAllocator returns an empty Allocator.
func NewAllocator() *Allocator { return &Allocator{} }

// Lookup returns the identity of key, if it is live.
func (a *Allocator) Lookup(key string) (uint32, bool) {
	id, ok := a.ids[key]
	return id, ok
}

// Key returns the key of a live identity.
func (a *Allocator) Key(id uint32) (string, bool) {
	k, ok := a.keys[id]
	return k, ok
}

// Len returns the number of live identities.
func (a *Allocator) Len() int { return len(a.ids) }

// assign makes keys (sorted, unique) the live set: it releases every other
// key and numbers the new ones in order.
func (a *Allocator) assign(keys []string) error {
	if a.ids == nil {
		a.ids, a.keys = map[string]uint32{}, map[uint32]string{}
	}
	for k, id := range a.ids {
		if _, ok := slices.BinarySearch(keys, k); !ok {
			delete(a.ids, k)
			delete(a.keys, id)
		}
	}
	if len(keys) > int(MaxIdentity-MinIdentity+1) {
		return ErrIdentitySpaceExhausted
	}
	for _, k := range keys {
		if _, ok := a.ids[k]; ok {
			continue
		}
		id := a.take()
		a.ids[k], a.keys[id] = id, k
	}
	return nil
}

// take returns the next free number; the caller checked there is one.
func (a *Allocator) take() uint32 {
	for {
		if a.next < MinIdentity || a.next > MaxIdentity {
			a.next = MinIdentity
		}
		id := a.next
		a.next++
		if _, used := a.keys[id]; !used {
			return id
		}
	}
}

// podKey is the identity key of a pod: its namespace's name and labels,
// its own labels, and the policy prefixes that contain its IP, so that
// selectors and ipBlocks alike are functions of the identity.
func podKey(ns string, nsLabels, podLabels map[string]string, cidrs []netip.Prefix) string {
	b := []byte("k8s:ns=")
	b = strconv.AppendQuote(b, ns)
	b = appendLabels(append(b, " nslabels="...), nsLabels)
	b = appendLabels(append(b, " labels="...), podLabels)
	return string(appendCIDRs(append(b, ' '), cidrs))
}

// cidrKey is the identity key of a policy prefix: the policy prefixes that
// contain it (itself included).
func cidrKey(cidrs []netip.Prefix) string {
	return string(appendCIDRs(nil, cidrs))
}

// remoteKey is the identity key of another node's address that policy
// prefixes contain (with none, the address is IdentityRemoteNode).
func remoteKey(cidrs []netip.Prefix) string {
	return string(appendCIDRs([]byte("reserved:remote-node "), cidrs))
}

func appendLabels(b []byte, m map[string]string) []byte {
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, k)
		b = append(b, '=')
		b = strconv.AppendQuote(b, m[k])
	}
	return append(b, '}')
}

func appendCIDRs(b []byte, cidrs []netip.Prefix) []byte {
	b = append(b, "cidr={"...)
	for i, p := range cidrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = p.AppendTo(b)
	}
	return append(b, '}')
}

// reservedNames names the reserved identities in Result.Identities.
var reservedNames = map[uint32]string{
	IdentityHost:       "reserved:host",
	IdentityWorld:      "reserved:world",
	IdentityRemoteNode: "reserved:remote-node",
}
