package cases

import (
	pol "github.com/cnilab/cnilab/e2e/policy"
)

// direction builds the rules of one direction.
type direction struct {
	name  string // "ingress" or "egress"
	rules func(rs ...rule) opt
}

var directions = []direction{{"ingress", ingress}, {"egress", egress}}

// toward is an expectation for direction d: the pods matching subject
// reach (egress) or are reached by (ingress) the pods matching peer, or
// not.
func toward(d direction, subject, peer string, ok bool, pps ...pol.PortProtocol) pol.ExpectRule {
	if d.name == "ingress" {
		return pol.ExpectRule{From: peer, To: subject, Allowed: ok, Ports: pps}
	}
	return pol.ExpectRule{From: subject, To: peer, Allowed: ok, Ports: pps}
}

// only expects subject to talk in direction d with peers alone.
func only(d direction, subject string, peers ...string) stepOpt {
	rs := []pol.ExpectRule{toward(d, subject, "*", false)}
	for _, p := range peers {
		rs = append(rs, toward(d, subject, p, true))
	}
	return expect(rs...)
}

// everything expects every pair allowed.
func everything() stepOpt { return expect(allowed("*", "*")) }

// target is what a generated policy selects in namespace x.
type target struct {
	name string
	sel  opt
	pods []string // the pods selected, by hand
	tags []string
}

var targets = []target{
	{"all", selectAll(), []string{"x/*"}, nil},
	{"pod-a", selectPod("a"), []string{"x/a"}, nil},
	{"not-pod-c", selectExpr(notIn("pod", "c")), []string{"x/a", "x/b"}, tags("match-expressions")},
}

// peerVariant is one way of naming the far end of a rule; rules nil
// means a policy with no rule (deny). sel and not are the pods it selects
// and the pods it then leaves out, worked out by hand (pod IPs all lie in
// one /4, as in the upstream suite's except test).
type peerVariant struct {
	name     string
	rules    []rule
	sel, not []string
	tags     []string
}

var peerVariants = []peerVariant{
	{"none", nil, nil, nil, tags("deny-all")},
	{"any", []rule{allowAll()}, []string{"*"}, nil, tags("allow-all")},
	{"pod-b", []rule{peers(podSel("b"))}, []string{"x/b"}, nil, tags("pod-selector")},
	{"pods-here", []rule{peers(anyPodHere())}, []string{"x/*"}, nil, tags("pod-selector")},
	{"ns-y", []rule{peers(nsSel("y"))}, []string{"y/*"}, nil, tags("namespace-selector")},
	{"all-namespaces", []rule{peers(anyNamespace())}, []string{"*"}, nil, tags("namespace-selector", "allow-all")},
	{"ns-y-and-pod-b", []rule{peers(both(nsSel("y"), podSel("b")))}, []string{"y/b"}, nil, tags("namespace-selector", "pod-selector", "and")},
	{"ns-y-or-pod-b", []rule{peers(nsSel("y"), podSel("b"))}, []string{"y/*", "x/b"}, nil, tags("namespace-selector", "pod-selector", "or")},
	{"two-rules-ns-z-pod-c", []rule{peers(nsSel("z")), peers(podSel("c"))}, []string{"z/*", "x/c"}, nil, tags("namespace-selector", "pod-selector", "or")},
	{"ns-not-x-and-pod-in-b-c", []rule{peers(both(nsExpr(notIn("ns", "x")), podExpr(isIn("pod", "b", "c"))))}, []string{"y/b", "y/c", "z/b", "z/c"}, nil, tags("namespace-selector", "pod-selector", "match-expressions", "and")},
	{"pod-without-team-label", []rule{peers(podExpr(notExists("team")))}, []string{"x/*"}, nil, tags("pod-selector", "match-expressions")},
	{"ns-with-ns-label-and-pod-a", []rule{peers(both(nsExpr(exists("ns")), podSel("a")))}, []string{"*/a"}, nil, tags("namespace-selector", "match-expressions", "and")},
	{"cidr-y-b", []rule{peers(cidr("{y/b}"))}, []string{"y/b"}, nil, tags("ipblock")},
	{"cidr-except-y-b", []rule{peers(cidr("{y/b}/4", "{y/b}"))}, []string{"*"}, []string{"y/b"}, tags("ipblock", "except")},
	{"cidr-z-a-or-pod-c", []rule{peers(cidr("{z/a}"), podSel("c"))}, []string{"z/a", "x/c"}, nil, tags("ipblock", "pod-selector", "or")},
}

// peerExpectations is what a direction of tg restricted to pv should
// allow, worked out by hand: the target's pods only reach (egress) or are
// reached by (ingress) the pods pv selects, on open (nil: every probe).
func peerExpectations(d direction, tg target, pv peerVariant, open []pol.PortProtocol) []pol.ExpectRule {
	var rs []pol.ExpectRule
	pair := func(subject, peer string, ok bool, pps ...pol.PortProtocol) {
		rs = append(rs, toward(d, subject, peer, ok, pps...))
	}
	for _, t := range tg.pods {
		pair(t, "*", false)
		for _, p := range pv.sel {
			pair(t, p, true, open...)
		}
		for _, p := range pv.not {
			pair(t, p, false)
		}
	}
	return rs
}

// generatedPeers is targets × peers × directions, every port open: which
// pods a peer list selects.
func generatedPeers() []pol.Case {
	var cs []pol.Case
	for _, d := range directions {
		for _, tg := range targets {
			for _, pv := range peerVariants {
				name := "generated/peers/" + d.name + "/" + tg.name + "/" + pv.name
				ts := append(tags("generated", d.name), tg.tags...)
				np := policy("gen-"+d.name+"-"+pv.name, tg.sel, d.rules(pv.rules...))
				cs = append(cs, newCase(name, d.name+" of "+tg.name+" in x allowed for peers "+pv.name, append(ts, pv.tags...),
					create(np, expect(peerExpectations(d, tg, pv, nil)...))))
			}
		}
	}
	return cs
}

// generatedPeersPorts crosses a few peers with a few ports: peers and
// ports of one rule must both match.
func generatedPeersPorts() []pol.Case {
	ports := []portVariant{
		{"tcp-81", onPorts(tcp(81)).ports, tags("numbered-port", "tcp"), opens(t81)},
		{"named-serve-80-udp", onPorts(named("serve-80-udp", "UDP")).ports, tags("named-port", "udp"), opens(u80)},
		{"range-tcp-80-81", onPorts(portRange(80, 81, "TCP")).ports, tags("endport", "tcp"), opens(t80, t81)},
	}
	var cs []pol.Case
	for _, d := range directions {
		for _, pv := range []peerVariant{peerVariants[2], peerVariants[4], peerVariants[6], peerVariants[12]} {
			for _, p := range ports {
				name := "generated/peers-ports/" + d.name + "/" + pv.name + "/" + p.name
				np := policy("gen-"+d.name+"-"+pv.name+"-"+p.name, selectPod("a"), d.rules(pv.rules[0].on(p.ports...)))
				ts := append(append(tags("generated", d.name), pv.tags...), p.tags...)
				cs = append(cs, newCase(name, d.name+" of x/a allowed for peers "+pv.name+" on "+p.name, ts,
					create(np, probing(pol.AllProbes()...), expect(peerExpectations(d, targets[1], pv, p.open)...))))
			}
		}
	}
	return cs
}
