package policy

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

func mustCompile(t *testing.T, s State, node string, a *Allocator) Result {
	t.Helper()
	r, err := Compile(s, Local{NodeName: node}, a)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// podIDs returns the identity of every pod.
func podIDs(s State, r Result) map[string]uint32 {
	out := map[string]uint32{}
	for _, p := range s.Pods {
		out[p.Namespace+"/"+p.Name] = r.Lookup(p.IP)
	}
	return out
}

func TestNodeIdentities(t *testing.T) {
	s := standardState()
	r := mustCompile(t, s, "node-1", nil)
	for addr, want := range map[netip.Addr]uint32{node1: IdentityHost, node2: IdentityRemoteNode, external: IdentityWorld} {
		if got := r.Lookup(addr); got != want {
			t.Errorf("Lookup(%v) = %d, want %d", addr, got, want)
		}
	}
	// A policy CIDR containing node-2 gives it a computed remote-node
	// identity; node-1 stays the host.
	s.Policies = []networkingv1.NetworkPolicy{netpol("x", "p", all(), ingress(peers(cidr("10.0.0.0/24"))))}
	r = mustCompile(t, s, "node-1", nil)
	id := r.Lookup(node2)
	if id < MinIdentity || !strings.HasPrefix(r.Identities[id], "reserved:remote-node cidr={10.0.0.0/24}") {
		t.Errorf("node-2 = %d (%q), want a computed remote-node identity", id, r.Identities[id])
	}
	if got := r.Lookup(node1); got != IdentityHost {
		t.Errorf("node-1 = %d, want host", got)
	}
	// The other node, compiled for node-2, sees it the other way round.
	r2 := mustCompile(t, s, "node-2", nil)
	if r2.Lookup(node2) != IdentityHost || r2.Lookup(node1) < MinIdentity {
		t.Errorf("on node-2: node-2 = %d, node-1 = %d", r2.Lookup(node2), r2.Lookup(node1))
	}
}

func TestHostNetworkPodIsTheNode(t *testing.T) {
	s := standardState()
	s.Pods = append(s.Pods, Pod{Namespace: "x", Name: "hostnet", IP: node1, Node: "node-1", Labels: map[string]string{"pod": "a"}})
	r := mustCompile(t, s, "node-1", nil)
	if _, ok := r.Endpoints[node1]; ok || r.Lookup(node1) != IdentityHost {
		t.Errorf("a hostNetwork pod must stay the node: endpoint %v, identity %d", ok, r.Lookup(node1))
	}
}

func TestEqualKeysShareIdentity(t *testing.T) {
	s := standardState()
	for i := range s.Pods {
		if s.Pods[i].Name == "c" {
			s.Pods[i].Labels = map[string]string{"pod": "a"} // c looks like a
		}
	}
	ids := podIDs(s, mustCompile(t, s, "node-1", nil))
	if ids["x/a"] != ids["x/c"] || ids["y/a"] != ids["y/c"] {
		t.Errorf("same namespace and labels must share an identity: %v", ids)
	}
	if ids["x/a"] == ids["y/a"] || ids["x/a"] == ids["x/b"] {
		t.Errorf("different namespace or labels must not: %v", ids)
	}
}

func TestIdentitiesStableUnderUnrelatedChanges(t *testing.T) {
	a := NewAllocator()
	s := standardState()
	before := podIDs(s, mustCompile(t, s, "node-1", a))

	// Policies without ipBlocks, a new pod, a deleted pod, a namespace
	// label change elsewhere: no other key changes.
	s.Policies = []networkingv1.NetworkPolicy{
		netpol("x", "deny", all()),
		netpol("y", "p", match("pod", "a"), ingress(peers(nsSel(match("ns", "x"))))),
	}
	s.Pods = append(s.Pods[:8], Pod{Namespace: "z", Name: "d", IP: netip.MustParseAddr("10.244.3.20"), Node: "node-2", Labels: map[string]string{"pod": "d"}})
	s.Namespaces[2].Labels = map[string]string{"ns": "z", "new": "label"}
	after := podIDs(s, mustCompile(t, s, "node-1", a))
	for k, id := range before {
		if strings.HasPrefix(k, "z/") {
			continue
		}
		if after[k] != id {
			t.Errorf("%s: identity %d became %d", k, id, after[k])
		}
	}
	if after["z/a"] == before["z/a"] {
		t.Errorf("z/a: namespace labels changed but identity stayed %d", after["z/a"])
	}
	if _, ok := after["z/c"]; ok {
		t.Errorf("z/c was deleted")
	}
}

func TestIdentityFollowsLabelsAndCIDRs(t *testing.T) {
	a := NewAllocator()
	s := standardState()
	before := podIDs(s, mustCompile(t, s, "node-1", a))
	live := a.Len()

	s.Pods[0].Labels = map[string]string{"pod": "a", "role": "db"} // x/a
	after := podIDs(s, mustCompile(t, s, "node-1", a))
	if after["x/a"] == before["x/a"] {
		t.Errorf("x/a label changed, identity stayed %d", before["x/a"])
	}
	if _, ok := a.Key(before["x/a"]); ok || a.Len() != live {
		t.Errorf("old identity %d not released (live %d, was %d)", before["x/a"], a.Len(), live)
	}
	for k, id := range before {
		if k != "x/a" && after[k] != id {
			t.Errorf("%s renumbered %d -> %d", k, id, after[k])
		}
	}
	// New numbers are not the released one: a number never changes
	// meaning between consecutive results.
	for k, id := range after {
		if id == before["x/a"] {
			t.Errorf("%s reuses released identity %d", k, id)
		}
	}

	// A CIDR containing y/* changes exactly the y pods' keys.
	s.Policies = []networkingv1.NetworkPolicy{netpol("x", "p", all(), ingress(peers(cidr("10.244.2.0/24"))))}
	withCIDR := podIDs(s, mustCompile(t, s, "node-1", a))
	for k, id := range after {
		if changed := withCIDR[k] != id; changed != strings.HasPrefix(k, "y/") {
			t.Errorf("%s: identity %d -> %d after adding 10.244.2.0/24", k, id, withCIDR[k])
		}
	}
}

func TestExceptHoleIdentity(t *testing.T) {
	s := standardState()
	s.Policies = []networkingv1.NetworkPolicy{netpol("x", "p", all(), ingress(peers(cidr("10.244.0.0/16", "10.244.1.0/24"))))}
	r := mustCompile(t, s, "node-1", nil)
	hole := r.Identities[r.Lookup(netip.MustParseAddr("10.244.1.200"))]
	if hole != "cidr={10.244.0.0/16,10.244.1.0/24}" {
		t.Errorf("address in the except hole resolves to %q", hole)
	}
	if in := r.Identities[r.Lookup(netip.MustParseAddr("10.244.9.9"))]; in != "cidr={10.244.0.0/16}" {
		t.Errorf("address in the block resolves to %q", in)
	}
	if pod := r.Identities[r.Lookup(ip(s, "x/a"))]; !strings.HasSuffix(pod, "cidr={10.244.0.0/16,10.244.1.0/24}") {
		t.Errorf("x/a in the hole has key %q", pod)
	}
	if !Simulate([]Result{r}, netip.MustParseAddr("10.244.9.9"), ip(s, "x/a"), ProtoTCP, 80) ||
		Simulate([]Result{r}, netip.MustParseAddr("10.244.1.200"), ip(s, "x/a"), ProtoTCP, 80) {
		t.Errorf("the block must allow 10.244.9.9 and not the hole's 10.244.1.200")
	}
}

// TestDeterministic compiles shuffled inputs with fresh allocators.
func TestDeterministic(t *testing.T) {
	s := standardState()
	s.Policies = []networkingv1.NetworkPolicy{
		netpol("x", "p", all(), ingress(peers(cidr("10.244.0.0/16", "10.244.1.0/24"), nsSel(match("ns", "y"))))),
		netpol("y", "q", match("pod", "b"), egress(peers(cidr("10.0.0.0/8")).on(named(TCP, "serve-80-tcp")))),
	}
	want := mustCompile(t, s, "node-1", nil)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		rng.Shuffle(len(s.Pods), func(i, j int) { s.Pods[i], s.Pods[j] = s.Pods[j], s.Pods[i] })
		rng.Shuffle(len(s.Policies), func(i, j int) { s.Policies[i], s.Policies[j] = s.Policies[j], s.Policies[i] })
		rng.Shuffle(len(s.Namespaces), func(i, j int) { s.Namespaces[i], s.Namespaces[j] = s.Namespaces[j], s.Namespaces[i] })
		if got := mustCompile(t, s, "node-1", nil); !reflect.DeepEqual(got, want) {
			t.Fatalf("result depends on input order")
		}
	}
}

// TestNamedEgressPortUnion documents the one approximation: pods sharing an
// identity share their named egress ports.
func TestNamedEgressPortUnion(t *testing.T) {
	s := standardState()
	for i, p := range s.Pods {
		if p.Namespace+"/"+p.Name == "y/c" {
			s.Pods[i].Labels = map[string]string{"pod": "b"} // same identity as y/b
			s.Pods[i].Ports[0].ContainerPort = 8080          // serve-80-tcp is 8080 on y/c
		}
	}
	s.Policies = []networkingv1.NetworkPolicy{netpol("x", "p", match("pod", "a"), types(typeEg),
		egress(peers(nsSel(match("ns", "y"))).on(named(TCP, "serve-80-tcp"))))}
	nodes := compileNodes(t, s)
	xa := ip(s, "x/a")
	for _, c := range []struct {
		dst  string
		port uint16
		want bool
	}{
		{"y/c", 8080, true}, {"y/b", 80, true}, {"y/a", 80, true}, {"y/a", 8080, false},
		{"y/b", 8080, true}, // approximation: y/b shares y/c's identity
		{"y/c", 80, true},   // approximation: y/c shares y/b's identity
	} {
		if got := Simulate(nodes, xa, ip(s, c.dst), ProtoTCP, c.port); got != c.want {
			t.Errorf("x/a -> %s %d/TCP: got %v, want %v", c.dst, c.port, got, c.want)
		}
	}
	// Ingress named ports resolve on the endpoint itself: exact.
	s.Policies = []networkingv1.NetworkPolicy{netpol("y", "p", all(), ingress(peers().on(named(TCP, "serve-80-tcp"))))}
	nodes = compileNodes(t, s)
	if !Simulate(nodes, xa, ip(s, "y/c"), ProtoTCP, 8080) || Simulate(nodes, xa, ip(s, "y/c"), ProtoTCP, 80) ||
		Simulate(nodes, xa, ip(s, "y/b"), ProtoTCP, 8080) || !Simulate(nodes, xa, ip(s, "y/b"), ProtoTCP, 80) {
		t.Errorf("ingress named port must resolve on each endpoint's own ports")
	}
}
