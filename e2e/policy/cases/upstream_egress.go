package cases

import (
	pol "github.com/cnilab/cnilab/e2e/policy"
)

// upstreamEgress covers the egress, both-direction and ipBlock tests of
// the upstream suite.
func upstreamEgress() []pol.Case {
	t80, t81 := pol.TCP80, pol.TCP81
	return []pol.Case{
		up("egress-named-port", "should allow egress access on one named port", tags("egress", "named-port", "tcp"),
			create(policy("allow-egress", selectLabels(), egress(onPorts(named("serve-80-tcp")))),
				expect(allowed("*", "*", t80), denied("x/*", "*", t81)))),
		up("deny-egress-by-pod-selector", "should deny egress from pods based on PodSelector", tags("egress", "deny-all", "tcp"),
			create(policy("deny-egress-pod-a", selectPod("a"), egress()),
				expect(denied("x/a", "*", t80)))),
		up("deny-egress-namespace", "should deny egress from all pods in a namespace", tags("egress", "deny-all", "tcp"),
			create(policy("deny-egress-ns-x", selectAll(), egress()),
				expect(denied("x/*", "*", t80)))),
		up("ingress-and-egress-together", "should work with Ingress, Egress specified together", tags("ingress", "egress", "pod-selector", "numbered-port", "tcp"),
			create(policy("allow-client-a-via-pod-selector", selectPod("a"),
				ingress(peers(podSel("b"))), egress(onPorts(port(80)))),
				expect(
					denied("*", "x/a", t80, t81), allowed("x/b", "x/a", t80, t81),
					denied("x/a", "*", t81)))),
		up("egress-denies-despite-ingress-allow", "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)", tags("ingress", "egress", "namespace-selector", "pod-selector", "and", "tcp"),
			create(policy("allow-to-ns-y-pod-a", selectPod("a"), egress(peers(both(nsNameSel("y"), podSel("a"))))), setup()),
			create(policy("allow-from-xa-on-ya-match-selector", in("y"), selectPod("a"), ingress(peers(both(nsNameSel("x"), podSel("a"))))), setup()),
			create(policy("allow-from-xa-on-yb-match-selector", in("y"), selectPod("b"), ingress(peers(both(nsNameSel("x"), podSel("a"))))),
				expect(
					denied("x/a", "*", t80), denied("*", "y/a", t80), allowed("x/a", "y/a", t80),
					denied("*", "y/b", t80)))),
		up("egress-to-pod-in-other-namespace", "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector", tags("egress", "namespace-selector", "pod-selector", "and", "tcp"),
			create(policy("allow-to-ns-y-pod-a", selectPod("a"), egress(peers(both(nsNameSel("y"), podSel("a"))))),
				expect(denied("x/a", "*", t80), allowed("x/a", "y/a", t80)))),
		up("egress-allow-all-precedence", "should enforce multiple egress policies with egress allow-all policy taking precedence", tags("egress", "allow-all", "numbered-port", "stacked", "conflict", "tcp"),
			create(policy("allow-egress-port-80", selectLabels(), egress(onPorts(port(80)))),
				expect(denied("x/*", "*", t81))),
			create(policy("allow-egress", selectLabels(), egress(allowAll())),
				expect(allowed("*", "*", t81)))),
		up("egress-to-cidr", "should allow egress access to server in CIDR block", tags("egress", "ipblock", "tcp"),
			create(policy("allow-client-a-via-cidr-egress-rule", selectPod("a"), egress(peers(cidr("{y/b}")))),
				expect(denied("x/a", "*", t80), allowed("x/a", "y/b", t80)))),
		up("egress-cidr-except", "should enforce except clause while egress access to server in CIDR block", tags("egress", "ipblock", "except", "tcp"),
			create(policy("allow-client-a-via-cidr-egress-rule", selectPod("a"), egress(peers(cidr("{x/b}/4", "{x/b}")))),
				expect(denied("x/a", "x/b", t80)))),
		up("cidr-and-except-overlap", "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed", tags("egress", "ipblock", "except", "update", "tcp"),
			create(policy("allow-client-a-via-cidr-egress-rule", selectPod("a"), egress(peers(cidr("{x/b}/4", "{x/b}")))),
				expect(denied("x/a", "x/b", t80))),
			update(policy("allow-client-a-via-cidr-egress-rule", selectPod("a"), egress(peers(cidr("{x/b}")))),
				expect(denied("x/a", "*", t80), allowed("x/a", "x/b", t80)))),
		up("ingress-egress-independent", "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector", tags("ingress", "egress", "independent", "tcp"),
			create(policy("allow-egress-for-target", selectPod("a"), egress(allowAll())),
				expect(allowed("*", "*", t80))),
			create(policy("deny-ingress-via-label-selector", selectPod("a"), ingress()),
				expect(denied("*", "x/a", t80)))),
		up("egress-namespace-selector-not-in-default-label", "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label", tags("egress", "namespace-selector", "match-expressions", "tcp"),
			create(policy("allow-ns-y-match-selector-for-immutable-ns-label", selectPod("a"), egress(peers(nsExpr(notIn(pol.NamespaceNameLabel, "y"))))),
				expect(denied("x/a", "y/*", t80)))),
	}
}
