package policy

import (
	"cmp"
	"errors"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Compile computes the datapath state of node local.NodeName from s. Every
// field of networking.k8s.io/v1 NetworkPolicy is implemented; the rules are
// documented on parsePolicy and the functions it calls, and on peerMatches,
// compileRule and endpoint.
//
// Peers are turned into the identities present in s, so the Result changes
// when pods, labels, namespaces or nodes change: that is how updates
// propagate, through Diff.
//
// alloc keeps identity numbers stable from one call to the next (nil: a
// fresh Allocator). Its state is updated even when an error is returned.
//
// The error is nil, ErrIdentitySpaceExhausted (then the Result is empty),
// or the errors.Join of one *PolicyError per invalid policy: then the
// Result is complete and usable, those policies compiled fail-closed (they
// isolate the pods they select, for their policy types, and allow
// nothing), and the agent reports them.
func Compile(s State, local Local, alloc *Allocator) (Result, error) {
	if alloc == nil {
		alloc = NewAllocator()
	}
	policies, errs := parseAll(s.Policies)
	c := &compiler{prefixes: policyPrefixes(policies)}
	if err := c.identities(s, local, alloc); err != nil {
		return Result{}, err
	}
	res := Result{
		IPCache:    c.ipcache,
		Endpoints:  make(map[netip.Addr]EndpointPolicy, len(c.local)),
		Identities: make(map[uint32]string, len(c.idents)),
	}
	for _, id := range c.idents {
		res.Identities[id.id] = id.key
	}
	byNS := map[string][]*compiledPolicy{}
	for i := range policies {
		byNS[policies[i].ns] = append(byNS[policies[i].ns], &compiledPolicy{parsed: &policies[i]})
	}
	for _, ep := range c.local {
		res.Endpoints[ep.addr] = c.endpoint(ep, byNS[ep.pod.Namespace])
	}
	return res, errors.Join(errs...)
}

// parseAll parses the policies in namespace/name order.
func parseAll(nps []networkingv1.NetworkPolicy) ([]parsed, []error) {
	order := make([]int, len(nps))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(nps[a].Namespace, nps[b].Namespace), cmp.Compare(nps[a].Name, nps[b].Name))
	})
	out := make([]parsed, 0, len(nps))
	var errs []error
	for _, i := range order {
		p, err := parsePolicy(&nps[i])
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, p)
	}
	return out, errs
}

// policyPrefixes returns every ipBlock cidr and except of the valid
// policies, sorted (netip.Prefix.Compare: shorter prefixes first) and
// unique, and sets the indices of every block.
func policyPrefixes(policies []parsed) []netip.Prefix {
	var out []netip.Prefix
	blocks := func(yield func(*block) bool) {
		for _, p := range policies {
			for _, rules := range [2][]rule{p.in, p.eg} {
				for _, r := range rules {
					for _, peer := range r.peers {
						if peer.block != nil && !yield(peer.block) {
							return
						}
					}
				}
			}
		}
	}
	for b := range blocks {
		out = append(out, b.cidr)
		out = append(out, b.except...)
	}
	slices.SortFunc(out, netip.Prefix.Compare)
	out = slices.Compact(out)
	index := func(p netip.Prefix) int {
		i, _ := slices.BinarySearchFunc(out, p, netip.Prefix.Compare)
		return i
	}
	for b := range blocks {
		b.cidrIndex = index(b.cidr)
		b.exceptIndex = make([]int, len(b.except))
		for i, e := range b.except {
			b.exceptIndex[i] = index(e)
		}
	}
	return out
}

// compiledPolicy caches the rules of a policy once some endpoint needs them.
type compiledPolicy struct {
	*parsed
	done     bool
	rin, reg []compiledRule
}

// compiledRule is a rule turned into identities.
type compiledRule struct {
	// peers are the identities the rule's peers select ([IdentityAny] for
	// any peer); only kept when named is not empty.
	peers []uint32
	// fixed are the entries that do not depend on the endpoint.
	fixed []entry
	// named are ingress named ports, resolved against each endpoint.
	named []port
}

// entry is a PolicyKey without its endpoint and direction.
type entry struct {
	id    uint32
	port  uint16
	proto uint8
}

type dirEntry struct {
	entry
	egress bool
}

// endpoint computes the state of one local endpoint from the policies of
// its namespace. "Multiple network policies can select the same set of
// pods. In this case, the ingress rules for each are combined additively"
// (spec.podSelector): the entries are the union over the policies that
// select the pod, and a direction is enforced iff one of them has that
// policy type.
func (c *compiler) endpoint(ep localEndpoint, policies []*compiledPolicy) EndpointPolicy {
	var out EndpointPolicy
	set := map[dirEntry]struct{}{}
	podLabels := labels.Set(ep.pod.Labels)
	for _, p := range policies {
		if !p.sel.Matches(podLabels) {
			continue
		}
		if !p.done {
			p.rin, p.reg, p.done = c.compileRules(p.in, p.ns, false), c.compileRules(p.eg, p.ns, true), true
		}
		if p.ingress {
			out.IngressEnforced = true
			for _, r := range p.rin {
				for _, e := range r.fixed {
					set[dirEntry{e, false}] = struct{}{}
				}
				for _, np := range r.named {
					// Ingress named port: "a numerical or named port on a pod",
					// the pod being the selected one, this endpoint.
					for _, n := range containerPorts(ep.pod.Ports, np.name, np.proto) {
						for _, id := range r.peers {
							set[dirEntry{entry{id, n, np.proto}, false}] = struct{}{}
						}
					}
				}
			}
		}
		if p.egress {
			out.EgressEnforced = true
			for _, r := range p.reg {
				for _, e := range r.fixed {
					set[dirEntry{e, true}] = struct{}{}
				}
			}
		}
	}
	if out.IngressEnforced {
		// spec.ingress: "Traffic is allowed to a pod if [...] the traffic
		// source is the pod's local node".
		set[dirEntry{entry{IdentityHost, 0, ProtoAny}, false}] = struct{}{}
	}
	out.Keys = make([]PolicyKey, 0, len(set))
	for e := range set {
		out.Keys = append(out.Keys, PolicyKey{Endpoint: ep.addr, Identity: e.id, Port: e.port, Proto: e.proto, Egress: e.egress})
	}
	slices.SortFunc(out.Keys, compareKeys)
	return out
}

// compareKeys orders keys by endpoint, direction (ingress first), identity,
// protocol and port.
func compareKeys(a, b PolicyKey) int {
	if c := a.Endpoint.Compare(b.Endpoint); c != 0 {
		return c
	}
	if a.Egress != b.Egress {
		if a.Egress {
			return 1
		}
		return -1
	}
	return cmp.Or(cmp.Compare(a.Identity, b.Identity), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port))
}

// containerPorts returns the numbers of the container ports called name on
// proto ("protocol [...] Defaults to "TCP"", ContainerPort.protocol).
func containerPorts(ports []corev1.ContainerPort, name string, proto uint8) []uint16 {
	var out []uint16
	for _, cp := range ports {
		if cp.Name == name && containerProto(cp.Protocol) == proto && cp.ContainerPort > 0 && cp.ContainerPort <= 65535 {
			out = append(out, uint16(cp.ContainerPort))
		}
	}
	return out
}

func containerProto(p corev1.Protocol) uint8 {
	switch p {
	case "", corev1.ProtocolTCP:
		return ProtoTCP
	case corev1.ProtocolUDP:
		return ProtoUDP
	case corev1.ProtocolSCTP:
		return ProtoSCTP
	}
	return ProtoAny // matches no policy port: those always carry a protocol
}
