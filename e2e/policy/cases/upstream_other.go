package cases

import (
	pol "github.com/cnilab/cnilab/e2e/policy"
)

// upstreamUpdates covers the upstream tests that change policies, labels
// or delete policies between probes.
func upstreamUpdates() []pol.Case {
	t80, t81 := pol.TCP80, pol.TCP81
	return []pol.Case{
		up("updated-policy", "should enforce updated policy", tags("ingress", "update", "allow-all", "deny-all", "tcp"),
			create(policy("allow-all-mutate-to-deny-all", selectLabels(), ingress(allowAll())),
				expect(allowed("*", "*", t81))),
			update(policy("allow-all-mutate-to-deny-all", selectLabels(), ingress()),
				expect(denied("*", "x/*", t81)))),
		up("updated-namespace", "should allow ingress access from updated namespace", tags("ingress", "update", "labels", "namespace-selector", "tcp"),
			create(policy("allow-client-a-via-ns-selector", selectPod("a"), ingress(peers(nsLabels("ns2", "updated")))),
				expect(denied("*", "x/a", t80))),
			labelNamespace("y", labels("ns", "y", "ns2", "updated"),
				expect(denied("*", "x/a", t80), allowed("y/*", "*", t80)))),
		up("updated-pod", "should allow ingress access from updated pod", tags("ingress", "update", "labels", "pod-selector", "tcp"),
			create(policy("allow-client-a-via-pod-selector", selectPod("a"), ingress(peers(podLabels("pod", "b", "pod2", "updated")))),
				expect(denied("*", "x/a", t80))),
			labelPod("x", "b", labels("pod", "b", "pod2", "updated"),
				expect(denied("*", "x/a", t80), allowed("x/b", "x/a", t80)))),
		up("updated-pod-isolated", "should deny ingress access to updated pod", tags("ingress", "update", "labels", "deny-all", "tcp"),
			create(policy("deny-ingress-via-label-selector", selectLabels("target", "isolated"), ingress()),
				expect(allowed("*", "*", t80))),
			labelPod("x", "a", labels("pod", "a", "target", "isolated"),
				expect(denied("*", "x/a", t80)))),
		up("deleted-policy", "should stop enforcing policies after they are deleted", tags("ingress", "egress", "update", "deny-all", "tcp"),
			create(policy("deny-all", selectAll(), ingress(), egress()),
				expect(denied("x/*", "*", t80), denied("*", "x/*", t80))),
			remove("x", "deny-all",
				expect(allowed("*", "*", t80)))),
	}
}

// upstreamProtocols covers the upstream SCTP and UDP tests, and the
// "NetworkPolicy between server and client using UDP/SCTP" contexts.
func upstreamProtocols() []pol.Case {
	t81 := pol.TCP81
	withSCTP81 := probing(append(pol.DefaultProbes(), pol.SCTP81)...)
	var cs []pol.Case
	cs = append(cs,
		up("sctp-is-not-tcp", "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP", tags("ingress", "sctp", "tcp", "numbered-port", "deny-all"),
			create(policy("deny-ingress", selectAll(), ingress()), setup()),
			create(policy("allow-only-sctp-ingress-on-port-81", selectPod("a"), ingress(onPorts(sctp(81)))), withSCTP81,
				expect(denied("*", "x/*", t81)))),
		up("sctp-policy-isolates", "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP", tags("ingress", "sctp", "tcp", "numbered-port"),
			create(policy("allow-only-sctp-ingress-on-port-80", selectPod("a"), ingress(onPorts(sctp(80)))),
				expect(denied("*", "x/a", t81)))),
		up("udp-policy-denies-tcp", "should not allow access by TCP when a policy specifies only UDP", tags("ingress", "udp", "tcp", "numbered-port"),
			create(policy("allow-only-udp-ingress-on-port-81", selectPod("a"), ingress(onPorts(udp(81)))),
				expect(denied("*", "x/a", t81)))),
	)
	for _, p := range []struct {
		tag     string
		at80    pol.PortProtocol
		at81    pol.PortProtocol
		probing stepOpt
	}{
		{"udp", pol.UDP80, pol.UDP81, probing(pol.DefaultProbes()...)},
		{"sctp", pol.SCTP80, pol.SCTP81, withSCTP81},
	} {
		proto := p.at80.Protocol
		cs = append(cs,
			up(p.tag+"/default-deny-ingress", "using "+string(proto)+": should support a 'default-deny-ingress' policy", tags("ingress", "deny-all", p.tag),
				create(policy("deny-all", selectAll(), ingress()), p.probing,
					expect(denied("*", "x/*", p.at80)))),
			up(p.tag+"/ports", "using "+string(proto)+": should enforce policy based on Ports", tags("ingress", "namespace-selector", "numbered-port", p.tag),
				create(policy("allow-ingress-on-port-81-ns-x", selectPod("a"), ingress(peers(nsNameSel("y")).on(numbered(81, proto)))), p.probing,
					expect(denied("x/*", "x/a", p.at81), denied("z/*", "x/a", p.at81)))),
			up(p.tag+"/pod-in-other-namespace-by-pod-and-namespace-selector", "using "+string(proto)+": should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector", tags("ingress", "pod-selector", "namespace-selector", "and", p.tag),
				create(policy("allow-ns-y-pod-a-via-namespace-pod-selector", selectPod("a"), ingress(peers(both(nsNameSel("y"), podSel("a"))))), p.probing,
					expect(denied("*", "x/a", p.at80), allowed("y/a", "x/a", p.at80)))),
		)
	}
	return cs
}

// upstreamCases is every upstream case.
func upstreamCases() []pol.Case {
	var cs []pol.Case
	for _, f := range []func() []pol.Case{upstreamIngress, upstreamEgress, upstreamUpdates, upstreamProtocols} {
		cs = append(cs, f()...)
	}
	return cs
}
