package cases

import (
	pol "github.com/cnilab/cnilab/e2e/policy"
)

// conflicts covers policies that overlap: there is no deny rule in
// NetworkPolicy, so a deny-all and an allow compose as a union, per
// direction, and a connection needs both its source's egress and its
// destination's ingress.
func conflicts() []pol.Case {
	var cs []pol.Case
	c := func(slug, desc string, ts []string, steps ...pol.Step) {
		cs = append(cs, newCase("conflict/"+slug, desc, append(tags("conflict"), ts...), steps...))
	}
	for _, d := range directions {
		deny := create(policy("deny-all-"+d.name, selectAll(), d.rules()), setup())
		allow := func(name string, r rule) pol.Step {
			return create(policy(name, selectPod("a"), d.rules(r)))
		}
		dt := func(ts ...string) []string { return append(tags(d.name, "deny-all", "stacked"), ts...) }
		c(d.name+"/deny-all-then-pod-b", "deny-all in x, then x/a opens to pod b", dt("pod-selector"),
			deny, allow("allow-pod-b", peers(podSel("b"))))
		c(d.name+"/deny-all-then-ns-y", "deny-all in x, then x/a opens to namespace y", dt("namespace-selector"),
			deny, allow("allow-ns-y", peers(nsSel("y"))))
		c(d.name+"/deny-all-then-tcp-80", "deny-all in x, then x/a opens TCP 80", dt("numbered-port", "tcp"),
			deny, allow("allow-tcp-80", onPorts(tcp(80))))
		c(d.name+"/deny-all-then-named-udp-81", "deny-all in x, then x/a opens serve-81-udp", dt("named-port", "udp"),
			deny, allow("allow-serve-81-udp", onPorts(named("serve-81-udp", "UDP"))))
		c(d.name+"/deny-all-then-cidr", "deny-all in x, then x/a opens to y/b's IP", dt("ipblock"),
			deny, allow("allow-y-b", peers(cidr("{y/b}"))))
		c(d.name+"/allow-all-then-deny-all", "allow-all then deny-all in x: allow-all still wins", tags(d.name, "allow-all", "deny-all", "stacked"),
			create(policy("allow-all", selectAll(), d.rules(allowAll()))),
			create(policy("deny-all", selectAll(), d.rules())))
		c(d.name+"/disjoint-ports-union", "two policies on x/a open TCP 80 and UDP 81", tags(d.name, "numbered-port", "stacked", "tcp", "udp"),
			create(policy("tcp-80", selectPod("a"), d.rules(onPorts(tcp(80)))), setup()),
			create(policy("udp-81", selectPod("a"), d.rules(onPorts(udp(81))))))
		c(d.name+"/disjoint-peers-union", "two policies on x/a open pod b and namespace z", tags(d.name, "pod-selector", "namespace-selector", "stacked"),
			create(policy("pod-b", selectPod("a"), d.rules(peers(podSel("b")))), setup()),
			create(policy("ns-z", selectPod("a"), d.rules(peers(nsSel("z"))))))
		c(d.name+"/except-hole-plugged", "one policy leaves y/b out through except, another lets it in", tags(d.name, "ipblock", "except", "stacked"),
			create(policy("all-but-y-b", selectPod("a"), d.rules(peers(cidr("{y/b}/4", "{y/b}"))))),
			create(policy("just-y-b", selectPod("a"), d.rules(peers(cidr("{y/b}"))))))
		c(d.name+"/overlapping-targets", "x/a is selected by a pod-b policy and by a namespace-wide ns-y policy", tags(d.name, "pod-selector", "namespace-selector", "stacked"),
			create(policy("a-pod-b", selectPod("a"), d.rules(peers(podSel("b")))), setup()),
			create(policy("all-ns-y", selectAll(), d.rules(peers(nsSel("y"))))))
		c(d.name+"/same-peer-different-ports", "x/a opens TCP 80 to pod b and UDP 80 to namespace y", tags(d.name, "pod-selector", "namespace-selector", "numbered-port", "tcp", "udp"),
			create(policy("two-rules", selectPod("a"), d.rules(peers(podSel("b")).on(tcp(80)), peers(nsSel("y")).on(udp(80))))))
	}
	c("both/egress-allowed-ingress-denied", "x/a may send anywhere, y accepts nothing", tags("ingress", "egress", "allow-all", "deny-all"),
		create(policy("egress-all", selectPod("a"), egress(allowAll())), setup()),
		create(policy("deny-ingress", in("y"), selectAll(), ingress())))
	c("both/ingress-allowed-egress-denied", "y accepts x, x sends nothing", tags("ingress", "egress", "allow-all", "deny-all", "namespace-selector"),
		create(policy("from-x", in("y"), selectAll(), ingress(peers(nsSel("x")))), setup()),
		create(policy("deny-egress", selectAll(), egress())))
	c("both/policy-elsewhere-does-not-isolate", "a policy in y naming x does not isolate x", tags("ingress", "egress", "namespace-selector"),
		create(policy("y-to-x", in("y"), selectAll(), egress(peers(nsSel("x"))), ingress(peers(nsSel("x"))))))
	c("both/deny-egress-x-deny-ingress-y", "x sends nothing and y accepts nothing", tags("ingress", "egress", "deny-all"),
		create(policy("deny-egress", selectAll(), egress()), setup()),
		create(policy("deny-ingress", in("y"), selectAll(), ingress())))
	c("both/egress-and-ingress-agree", "x/a may send to y/b and y/b accepts x/a, only on TCP 81", tags("ingress", "egress", "namespace-selector", "pod-selector", "and", "numbered-port", "tcp"),
		create(policy("a-to-y-b", selectPod("a"), egress(peers(both(nsSel("y"), podSel("b"))).on(tcp(81)))), setup()),
		create(policy("b-from-x-a", in("y"), selectPod("b"), ingress(peers(both(nsSel("x"), podSel("a"))).on(tcp(81))))))
	return cs
}
