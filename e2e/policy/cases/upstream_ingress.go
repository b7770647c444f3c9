package cases

import (
	pol "github.com/cnilab/cnilab/e2e/policy"
)

// up returns an upstream case: named upstream/<slug>, described by the
// upstream test's title, tagged upstream.
func up(slug, title string, ts []string, steps ...pol.Step) pol.Case {
	return newCase("upstream/"+slug, "upstream: "+title, append(tags("upstream"), ts...), steps...)
}

// upstreamIngress covers the ingress tests of the upstream suite
// ("NetworkPolicy between server and client"), in its order.
func upstreamIngress() []pol.Case {
	t80, t81 := pol.TCP80, pol.TCP81
	return []pol.Case{
		up("default-deny-ingress", "should support a 'default-deny-ingress' policy", tags("ingress", "deny-all", "tcp"),
			create(policy("deny-ingress", in("x"), selectAll(), ingress()),
				expect(denied("*", "x/*", t80)))),
		up("allow-from-pod-selector-same-namespace", "should enforce policy to allow traffic from pods within server namespace based on PodSelector", tags("ingress", "pod-selector", "tcp"),
			create(policy("x-a-allows-x-b", selectPod("a"), ingress(peers(podSel("b")))),
				expect(denied("*", "x/a", t80), allowed("x/b", "x/a", t80)))),
		up("allow-ingress-for-a-target", "should enforce policy to allow ingress traffic for a target", tags("ingress", "deny-all", "conflict", "tcp"),
			create(policy("deny-all", selectAll(), ingress()), setup()),
			create(policy("allow-all-to-a", selectPod("a"), ingress(peers(both(anyNamespace(), anyPodHere())))),
				expect(denied("*", "x/*", t80), allowed("*", "x/a", t80)))),
		up("allow-from-all-namespaces", "should enforce policy to allow ingress traffic from pods in all namespaces", tags("ingress", "namespace-selector", "allow-all", "tcp"),
			create(policy("allow-from-another-ns", selectPod("a"), ingress(peers(anyNamespace()))),
				expect(allowed("*", "*", t80)))),
		up("allow-from-namespace-selector", "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector", tags("ingress", "namespace-selector", "tcp"),
			create(policy("allow-client-a-via-ns-selector", selectPod("a"), ingress(peers(nsNameSel("y")))),
				expect(denied("x/*", "x/a", t80), denied("z/*", "x/a", t80)))),
		up("pod-selector-match-expressions", "should enforce policy based on PodSelector with MatchExpressions", tags("ingress", "pod-selector", "match-expressions", "tcp"),
			create(policy("x-a-allows-x-b", selectPod("a"), ingress(peers(podExpr(isIn("pod", "b"))))),
				expect(denied("*", "x/a", t80), allowed("x/b", "x/a", t80)))),
		up("namespace-selector-match-expressions", "should enforce policy based on NamespaceSelector with MatchExpressions", tags("ingress", "namespace-selector", "match-expressions", "tcp"),
			create(policy("allow-ns-y-match-selector", selectPod("a"), ingress(peers(nsExpr(isIn(pol.NamespaceNameLabel, "y"))))),
				expect(denied("x/*", "x/a", t80), denied("z/*", "x/a", t80)))),
		up("pod-selector-or-namespace-selector", "should enforce policy based on PodSelector or NamespaceSelector", tags("ingress", "pod-selector", "namespace-selector", "match-expressions", "or", "tcp"),
			create(policy("allow-ns-y-match-selector", selectPod("a"), ingress(peers(nsExpr(notIn(pol.NamespaceNameLabel, "x")), podSel("b")))),
				expect(denied("x/a", "x/a", t80), denied("x/c", "x/a", t80)))),
		up("pod-selector-and-namespace-selector", "should enforce policy based on PodSelector and NamespaceSelector", tags("ingress", "pod-selector", "namespace-selector", "match-expressions", "and", "tcp"),
			create(policy("allow-ns-y-podselector-and-nsselector", selectPod("a"), ingress(peers(both(nsExpr(notIn(pol.NamespaceNameLabel, "x")), podSel("b"))))),
				expect(denied("*", "x/a", t80), allowed("y/b", "x/a", t80), allowed("z/b", "x/a", t80)))),
		up("multiple-pod-and-namespace-selectors", "should enforce policy based on Multiple PodSelectors and NamespaceSelectors", tags("ingress", "pod-selector", "namespace-selector", "match-expressions", "and", "tcp"),
			create(policy("allow-ns-y-z-pod-b-c", selectPod("a"), ingress(peers(both(nsExpr(notIn(pol.NamespaceNameLabel, "x")), podExpr(isIn("pod", "b", "c")))))),
				expect(denied("x/*", "x/a", t80), denied("*/a", "x/a", t80)))),
		up("any-pod-selectors", "should enforce policy based on any PodSelectors", tags("ingress", "pod-selector", "or", "tcp"),
			create(policy("allow-ns-x-pod-b-c", selectPod("a"), ingress(peers(podSel("b"), podSel("c")))),
				expect(denied("*", "x/a", t80), allowed("x/b", "x/a", t80), allowed("x/c", "x/a", t80)))),
		up("pod-in-other-namespace-by-pod-and-namespace-selector", "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector", tags("ingress", "pod-selector", "namespace-selector", "and", "tcp"),
			create(policy("allow-ns-y-pod-a-via-namespace-pod-selector", selectPod("a"), ingress(peers(both(nsNameSel("y"), podSel("a"))))),
				expect(denied("*", "x/a", t80), allowed("y/a", "x/a", t80)))),
		up("ports", "should enforce policy based on Ports", tags("ingress", "namespace-selector", "numbered-port", "tcp"),
			create(policy("allow-client-a-via-ns-selector", selectPod("a"), ingress(peers(nsNameSel("y")).on(tcp(81)))),
				expect(denied("x/*", "x/a", t81), allowed("y/*", "x/a", t81), denied("z/*", "x/a", t81)))),
		up("stacked-policies", "should enforce multiple, stacked policies with overlapping podSelectors", tags("ingress", "namespace-selector", "numbered-port", "stacked", "tcp"),
			create(policy("allow-client-a-via-ns-selector", selectPod("a"), ingress(peers(nsNameSel("y")).on(tcp(81)))),
				expect(denied("x/*", "x/a", t81), denied("z/*", "x/a", t81), denied("*", "x/a", t80))),
			create(policy("allow-client-a-via-ns-selector-80", selectPod("a"), ingress(peers(nsNameSel("y")).on(tcp(80)))),
				says("a second policy unblocks port 80"),
				expect(denied("x/*", "x/a", t80, t81), denied("z/*", "x/a", t80, t81)))),
		up("allow-all", "should support allow-all policy", tags("ingress", "allow-all", "tcp"),
			create(policy("allow-all", selectLabels(), ingress(allowAll())),
				expect(allowed("*", "*", t80, t81)))),
		up("ingress-named-port", "should allow ingress access on one named port", tags("ingress", "named-port", "tcp"),
			create(policy("allow-all", selectLabels(), ingress(onPorts(named("serve-81-tcp")))),
				expect(allowed("*", "*", t81), denied("*", "x/*", t80)))),
		up("ingress-named-port-from-namespace", "should allow ingress access from namespace on one named port", tags("ingress", "named-port", "namespace-selector", "tcp"),
			create(policy("allow-client-a-via-ns-selector-80", selectPod("a"), ingress(peers(nsNameSel("y")).on(named("serve-80-tcp", "TCP")))),
				expect(denied("x/*", "x/a", t80), denied("z/*", "x/a", t80), denied("*", "x/a", t81)))),
		up("nonexistent-named-port", "should not allow all ports if it cannot limit to the requested port", tags("ingress", "named-port", "tcp"),
			create(policy("allow-ingress-on-nonexistent-port", selectPod("a"), ingress(onPorts(named("no-such-port", "TCP")))),
				expect(denied("*", "x/a", t80)))),
		up("deny-from-other-namespaces", "should deny ingress from pods on other namespaces", tags("ingress", "pod-selector", "tcp"),
			create(policy("deny-empty-policy", selectAll(), ingress(peers(anyPodHere()))),
				expect(denied("y/*", "x/*", t80), denied("z/*", "x/*", t80)))),
		up("any-port-on-one-protocol", "should enforce ingress policy allowing any port traffic to a server on a specific protocol", tags("ingress", "protocol", "tcp", "udp"),
			create(policy("allow-ingress-by-proto", selectPod("a"), ingress(onPorts(protocol("TCP")))),
				expect(allowed("*", "*", t80), denied("*", "x/a", pol.UDP80)))),
		up("ingress-allow-all-precedence", "should enforce multiple ingress policies with ingress allow-all policy taking precedence", tags("ingress", "allow-all", "numbered-port", "stacked", "conflict", "tcp"),
			create(policy("allow-ingress-port-80", selectLabels(), ingress(onPorts(port(80)))),
				expect(denied("*", "x/*", t81))),
			create(policy("allow-ingress", selectLabels(), ingress(allowAll())),
				expect(allowed("*", "*", t81)))),
		up("namespace-selector-default-label", "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label", tags("ingress", "namespace-selector", "tcp"),
			create(policy("allow-client-a-via-ns-selector-for-immutable-ns-label", selectPod("a"), ingress(peers(nsNameSel("y")))),
				expect(denied("x/*", "x/a", t80), denied("z/*", "x/a", t80)))),
	}
}
