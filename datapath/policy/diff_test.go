package policy

import (
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// mapWriter applies writes to an in-memory Result, checking that each
// write changes something, and calls after() after every write.
type mapWriter struct {
	r     Result
	errs  []string
	after func()
}

func newMapWriter(r Result) *mapWriter {
	w := &mapWriter{r: Result{IPCache: maps.Clone(r.IPCache), Endpoints: map[netip.Addr]EndpointPolicy{}}, after: func() {}}
	for a, ep := range r.Endpoints {
		ep.Keys = slices.Clone(ep.Keys)
		w.r.Endpoints[a] = ep
	}
	return w
}

func (w *mapWriter) done(bad bool, format string, args ...any) error {
	if bad {
		w.errs = append(w.errs, fmt.Sprintf(format, args...))
	}
	w.after()
	return nil
}

func (w *mapWriter) AddKey(k PolicyKey) error {
	ep := w.r.Endpoints[k.Endpoint]
	dup := slices.Contains(ep.Keys, k)
	ep.Keys = append(ep.Keys, k)
	w.r.Endpoints[k.Endpoint] = ep
	return w.done(dup, "add of present key %+v", k)
}

func (w *mapWriter) RemoveKey(k PolicyKey) error {
	ep := w.r.Endpoints[k.Endpoint]
	i := slices.Index(ep.Keys, k)
	if i >= 0 {
		ep.Keys = slices.Delete(ep.Keys, i, i+1)
	}
	w.r.Endpoints[k.Endpoint] = ep
	return w.done(i < 0, "remove of absent key %+v", k)
}

func (w *mapWriter) UpsertIPCache(p netip.Prefix, id uint32) error {
	old, ok := w.r.IPCache[p]
	w.r.IPCache[p] = id
	return w.done(ok && old == id, "no-op upsert %v", p)
}

func (w *mapWriter) DeleteIPCache(p netip.Prefix) error {
	_, ok := w.r.IPCache[p]
	delete(w.r.IPCache, p)
	return w.done(!ok, "delete of absent %v", p)
}

func (w *mapWriter) SetEnforcement(a netip.Addr, egress, on bool) error {
	ep := w.r.Endpoints[a]
	flag := &ep.IngressEnforced
	if egress {
		flag = &ep.EgressEnforced
	}
	same := *flag == on
	*flag = on
	w.r.Endpoints[a] = ep
	return w.done(same, "no-op flag %v egress=%v", a, egress)
}

// normal drops endpoints with no state and sorts keys, for comparison.
func normal(r Result) Result {
	out := Result{IPCache: r.IPCache, Endpoints: map[netip.Addr]EndpointPolicy{}}
	for a, ep := range r.Endpoints {
		if ep.IngressEnforced || ep.EgressEnforced || len(ep.Keys) > 0 {
			ep.Keys = slices.Clone(ep.Keys)
			slices.SortFunc(ep.Keys, compareKeys)
			out.Endpoints[a] = ep
		}
	}
	return out
}

// transitions is a sequence of states of node-1 exercising every kind of
// change: policies, labels (renumbering), CIDRs (renumbering, except
// holes), pods, namespaces.
func transitions() []State {
	var out []State
	s := standardState()
	out = append(out, s)
	next := func(f func(*State)) {
		c := s
		c.Pods = slices.Clone(s.Pods)
		c.Namespaces = slices.Clone(s.Namespaces)
		c.Policies = slices.Clone(s.Policies)
		f(&c)
		s = c
		out = append(out, c)
	}
	next(func(s *State) {
		s.Policies = []networkingv1.NetworkPolicy{
			netpol("x", "deny", all()),
			netpol("x", "a-out", match("pod", "a"), egress(peers(nsSel(match("ns", "y"))).on(numPort(TCP, 80)))),
		}
	})
	next(func(s *State) {
		s.Policies = append(s.Policies, netpol("x", "cidr", all(), ingress(peers(cidr("10.244.0.0/16", "10.244.2.0/24")))))
	})
	next(func(s *State) {
		s.Pods[4].Labels = map[string]string{"pod": "bb"} // y/b
		s.Policies = append(s.Policies, netpol("y", "from-bb", match("pod", "a"), ingress(peers(podSel(match("pod", "bb"))))))
	})
	next(func(s *State) {
		s.Policies[2] = netpol("x", "cidr", all(), ingress(peers(cidr("10.244.0.0/16"), cidr("10.244.2.11/32"))))
	})
	next(func(s *State) {
		s.Pods = slices.Delete(s.Pods, 2, 3) // x/c
		s.Pods = append(s.Pods, Pod{Namespace: "x", Name: "d", Labels: map[string]string{"pod": "d"},
			IP: netip.MustParseAddr("10.244.1.20"), Node: "node-1", Ports: standardPorts()})
	})
	next(func(s *State) { s.Namespaces[1].Labels = map[string]string{"ns": "yy"} })
	next(func(s *State) {
		s.Policies = []networkingv1.NetworkPolicy{
			netpol("x", "named", all(), ingress(peers(nsSel(all())).on(named(UDP, "serve-81-udp"))),
				egress(peers(cidr("10.0.0.0/8", "10.244.3.0/24")).on(named(TCP, "serve-80-tcp")))),
		}
	})
	next(func(s *State) { s.Policies = nil })
	return out
}

// prefixOrderTransitions are two changes where a wrong ipcache write order
// would make an address resolve, in between, to an identity that neither
// state allows (address 10.245.1.5 and 10.246.1.5 towards x/a).
func prefixOrderTransitions() [][]State {
	nobody := match("pod", "nobody")
	at := func(policies ...networkingv1.NetworkPolicy) State {
		s := standardState()
		s.Policies = policies
		return s
	}
	xa := match("pod", "a")
	return [][]State{{
		// 10.245.0.0/16 changes identity (10.0.0.0/8 appears around it) while
		// 10.245.1.0/24 appears: upserts must go longest first.
		at(netpol("x", "p", xa, ingress(peers(cidr("10.245.0.0/16"))))),
		at(netpol("x", "p", xa, ingress(peers(cidr("10.245.1.0/24")))),
			netpol("x", "other", nobody, ingress(peers(cidr("10.245.0.0/16"), cidr("10.0.0.0/8"))))),
	}, {
		// 10.246.0.0/16 and 10.246.1.0/24 both go, 10.0.0.0/8 stays: deletes
		// must go shortest first.
		at(netpol("x", "p", xa, ingress(peers(cidr("10.246.1.0/24")))),
			netpol("x", "other", nobody, ingress(peers(cidr("10.0.0.0/8", "10.246.0.0/16"))))),
		at(netpol("x", "p", xa, ingress(peers(cidr("10.0.0.0/8"))))),
	}}
}

// peerAddrs are the addresses probed against each endpoint.
func peerAddrs(states ...State) []netip.Addr {
	set := map[netip.Addr]bool{node1: true, node2: true, external: true}
	for _, a := range []string{"10.244.2.99", "10.245.1.5", "10.246.1.5"} {
		set[netip.MustParseAddr(a)] = true
	}
	for _, s := range states {
		for _, p := range s.Pods {
			set[p.IP] = true
		}
	}
	return slices.SortedFunc(maps.Keys(set), netip.Addr.Compare)
}

// checkTransitions applies every transition with apply and returns the
// connections denied in between although allowed before and after.
func checkTransitions(t *testing.T, apply func(Delta, Writer) error) []string {
	var violations []string
	for _, states := range append(prefixOrderTransitions(), transitions()) {
		violations = append(violations, checkSequence(t, states, apply)...)
	}
	return violations
}

func checkSequence(t *testing.T, states []State, apply func(Delta, Writer) error) []string {
	alloc := NewAllocator()
	prev := mustCompile(t, states[0], "node-1", alloc)
	var violations []string
	for i, s := range states[1:] {
		cur := mustCompile(t, s, "node-1", alloc)
		d := Diff(prev, cur)
		w := newMapWriter(prev)
		peers := peerAddrs(states[i], s)
		eps := slices.Collect(maps.Keys(prev.Endpoints))
		for a := range cur.Endpoints {
			eps = append(eps, a)
		}
		writes := 0
		w.after = func() {
			writes++
			for _, ep := range eps {
				for _, peer := range peers {
					for _, egress := range []bool{false, true} {
						for _, p := range allProbes {
							if prev.Allows(ep, peer, egress, p.proto, p.port) && cur.Allows(ep, peer, egress, p.proto, p.port) &&
								!w.r.Allows(ep, peer, egress, p.proto, p.port) {
								violations = append(violations, fmt.Sprintf("step %d write %d: %v egress=%v %v %v", i+1, writes, ep, egress, peer, p))
							}
						}
					}
				}
			}
		}
		if err := apply(d, w); err != nil {
			t.Fatal(err)
		}
		if len(w.errs) > 0 {
			t.Errorf("step %d: bad writes: %v", i+1, w.errs)
		}
		if got, want := normal(w.r), normal(cur); !reflect.DeepEqual(got, want) {
			t.Errorf("step %d: applying the delta does not give the new result", i+1)
		}
		if d.Empty() {
			t.Errorf("step %d: empty delta", i+1)
		}
		prev = cur
	}
	return violations
}

func TestApplyNeverDeniesWhatBothAllow(t *testing.T) {
	if v := checkTransitions(t, Delta.Apply); len(v) > 0 {
		t.Errorf("%d transient denials, first: %s", len(v), v[0])
	}
}

// TestApplyOrderMatters shows the property test has teeth: removing first
// denies connections in between.
func TestApplyOrderMatters(t *testing.T) {
	removalsFirst := func(d Delta, w Writer) error {
		for _, e := range d.Endpoints {
			for _, k := range e.Remove {
				w.RemoveKey(k)
			}
		}
		for _, p := range d.IPCacheDeletes {
			w.DeleteIPCache(p)
		}
		d2 := d
		d2.IPCacheDeletes = nil
		for i := range d2.Endpoints {
			d2.Endpoints[i].Remove = nil
		}
		return d2.Apply(w)
	}
	if v := checkTransitions(t, removalsFirst); len(v) == 0 {
		t.Errorf("removals first caused no transient denial: the property check is blind")
	}
}

func TestDiffEmptyAndDetails(t *testing.T) {
	s := standardState()
	s.Policies = []networkingv1.NetworkPolicy{netpol("x", "deny", all())}
	a := NewAllocator()
	r1 := mustCompile(t, s, "node-1", a)
	if d := Diff(r1, mustCompile(t, s, "node-1", a)); !d.Empty() {
		t.Errorf("recompiling the same state gives %+v", d)
	}
	s.Policies = nil
	d := Diff(r1, mustCompile(t, s, "node-1", a))
	if len(d.IPCacheUpserts)+len(d.IPCacheDeletes) != 0 || len(d.Endpoints) != 2 {
		t.Fatalf("deleting deny-all: %+v", d)
	}
	for _, e := range d.Endpoints {
		if e.Old != (Enforcement{Ingress: true}) || e.New != (Enforcement{}) || len(e.Remove) != 1 || len(e.Add) != 0 {
			t.Errorf("endpoint delta %+v", e)
		}
	}
	// Upserts come longest prefix first, deletes shortest first.
	s.Policies = []networkingv1.NetworkPolicy{netpol("x", "p", all(), ingress(peers(cidr("10.0.0.0/8", "10.244.0.0/16"), cidr("10.244.1.0/24"))))}
	r3 := mustCompile(t, s, "node-1", a)
	d = Diff(mustCompile(t, standardState(), "node-1", NewAllocator()), r3)
	for i := 1; i < len(d.IPCacheUpserts); i++ {
		if d.IPCacheUpserts[i-1].Prefix.Bits() < d.IPCacheUpserts[i].Prefix.Bits() {
			t.Errorf("upserts not longest first: %v", d.IPCacheUpserts)
		}
	}
	d = Diff(r3, mustCompile(t, standardState(), "node-1", a))
	if !slices.IsSortedFunc(d.IPCacheDeletes, func(a, b netip.Prefix) int { return a.Bits() - b.Bits() }) || len(d.IPCacheDeletes) != 3 {
		t.Errorf("deletes not shortest first: %v", d.IPCacheDeletes)
	}
}
