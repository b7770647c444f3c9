package policy

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
)

// Delta is what changes from one Result of a node to the next. Apply it
// with Apply, which writes additions before removals; an agent that writes
// the maps itself must keep the order documented there.
type Delta struct {
	// IPCacheUpserts are new or changed entries, longest prefix first.
	IPCacheUpserts []IPCacheEntry
	// IPCacheDeletes are prefixes to delete, shortest prefix first.
	IPCacheDeletes []netip.Prefix
	// Endpoints are the endpoints that changed, by address.
	Endpoints []EndpointDelta
}

// IPCacheEntry is one ipcache entry.
type IPCacheEntry struct {
	Prefix   netip.Prefix
	Identity uint32
}

// Enforcement is the pair of flags of an endpoint.
type Enforcement struct {
	Ingress, Egress bool
}

// EndpointDelta is the change of one local endpoint.
type EndpointDelta struct {
	Endpoint netip.Addr
	// Added: the endpoint is new (Old is zero). Removed: it is gone (New is
	// zero and Remove holds all its keys).
	Added, Removed bool
	Old, New       Enforcement
	// Add and Remove are sorted keys to add and to remove.
	Add, Remove []PolicyKey
}

// Empty reports whether d changes nothing.
func (d Delta) Empty() bool {
	return len(d.IPCacheUpserts) == 0 && len(d.IPCacheDeletes) == 0 && len(d.Endpoints) == 0
}

// Diff returns the changes that turn old into new.
func Diff(old, new Result) Delta {
	var d Delta
	for p, id := range new.IPCache {
		if was, ok := old.IPCache[p]; !ok || was != id {
			d.IPCacheUpserts = append(d.IPCacheUpserts, IPCacheEntry{p, id})
		}
	}
	for p := range old.IPCache {
		if _, ok := new.IPCache[p]; !ok {
			d.IPCacheDeletes = append(d.IPCacheDeletes, p)
		}
	}
	slices.SortFunc(d.IPCacheUpserts, func(a, b IPCacheEntry) int {
		return cmp.Or(cmp.Compare(b.Prefix.Bits(), a.Prefix.Bits()), a.Prefix.Compare(b.Prefix))
	})
	slices.SortFunc(d.IPCacheDeletes, netip.Prefix.Compare) // shortest first

	eps := slices.Collect(maps.Keys(new.Endpoints))
	for a := range old.Endpoints {
		if _, ok := new.Endpoints[a]; !ok {
			eps = append(eps, a)
		}
	}
	slices.SortFunc(eps, netip.Addr.Compare)
	for _, a := range eps {
		o, hadOld := old.Endpoints[a]
		n, hasNew := new.Endpoints[a]
		ed := EndpointDelta{
			Endpoint: a, Added: !hadOld, Removed: !hasNew,
			Old: Enforcement{o.IngressEnforced, o.EgressEnforced},
			New: Enforcement{n.IngressEnforced, n.EgressEnforced},
		}
		ed.Add, ed.Remove = diffKeys(o.Keys, n.Keys)
		if ed.Added || ed.Removed || ed.Old != ed.New || len(ed.Add) > 0 || len(ed.Remove) > 0 {
			d.Endpoints = append(d.Endpoints, ed)
		}
	}
	return d
}

// diffKeys returns the keys of b missing from a and of a missing from b;
// both are sorted by compareKeys.
func diffKeys(a, b []PolicyKey) (add, remove []PolicyKey) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && compareKeys(a[i], b[j]) < 0):
			remove = append(remove, a[i])
			i++
		case i == len(a) || compareKeys(a[i], b[j]) > 0:
			add = append(add, b[j])
			j++
		default:
			i, j = i+1, j+1
		}
	}
	return add, remove
}

// Writer writes datapath maps, one entry at a time. The agent implements it
// over the loader's maps.
type Writer interface {
	AddKey(k PolicyKey) error
	RemoveKey(k PolicyKey) error
	UpsertIPCache(p netip.Prefix, identity uint32) error
	DeleteIPCache(p netip.Prefix) error
	// SetEnforcement sets the ingress (egress false) or egress flag of a
	// local endpoint.
	SetEnforcement(ep netip.Addr, egress, enforced bool) error
}

// Apply writes d through w, additions before removals, in six phases:
//
//  1. add every new key;
//  2. clear the enforcement flags that go from true to false;
//  3. upsert ipcache entries, longest prefix first;
//  4. delete ipcache entries, shortest prefix first;
//  5. set the enforcement flags that go from false to true;
//  6. remove every old key.
//
// Between any two writes, a connection that both the old and the new state
// allow is allowed: during phases 3 and 4 both the old and the new keys are
// present, and the two prefix orders make every address resolve to either
// its old or its new identity, never to a third one (an identity number is
// never reused between two consecutive Results, see Allocator); and
// enforcement is switched off before the ipcache changes and on after
// them, so while identities move an endpoint is only enforced in a
// direction that both states enforce. The price is that, for that short
// time, the union of both states may be allowed.
//
// Apply stops at the first error; the maps are then between the two
// states, and the agent should recompile and diff against what it wrote
// (or rewrite everything). Added and Removed endpoints need no call of
// their own: flags start false and a removed endpoint's keys and flags are
// cleared by phases 2 and 6.
func (d Delta) Apply(w Writer) error {
	for _, e := range d.Endpoints {
		for _, k := range e.Add {
			if err := w.AddKey(k); err != nil {
				return err
			}
		}
	}
	if err := d.setFlags(w, true, false); err != nil {
		return err
	}
	for _, e := range d.IPCacheUpserts {
		if err := w.UpsertIPCache(e.Prefix, e.Identity); err != nil {
			return err
		}
	}
	for _, p := range d.IPCacheDeletes {
		if err := w.DeleteIPCache(p); err != nil {
			return err
		}
	}
	if err := d.setFlags(w, false, true); err != nil {
		return err
	}
	for _, e := range d.Endpoints {
		for _, k := range e.Remove {
			if err := w.RemoveKey(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// setFlags writes the flags that change from -> to.
func (d Delta) setFlags(w Writer, from, to bool) error {
	for _, e := range d.Endpoints {
		if e.Old.Ingress == from && e.New.Ingress == to {
			if err := w.SetEnforcement(e.Endpoint, false, to); err != nil {
				return err
			}
		}
		if e.Old.Egress == from && e.New.Egress == to {
			if err := w.SetEnforcement(e.Endpoint, true, to); err != nil {
				return err
			}
		}
	}
	return nil
}
