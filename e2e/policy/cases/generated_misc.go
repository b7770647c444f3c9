package cases

import (
	pol "github.com/cnilab/cnilab/e2e/policy"
)

// generatedDefaulting covers spec.policyTypes defaulting: ingress always,
// egress only when spec.egress has rules.
func generatedDefaulting() []pol.Case {
	d := func(slug, desc string, ts []string, opts ...opt) pol.Case {
		np := policy("defaulting-"+slug, append([]opt{selectPod("a")}, opts...)...)
		return newCase("generated/defaulting/"+slug, desc, append(tags("generated", "defaulting"), ts...), create(np))
	}
	return []pol.Case{
		d("empty-spec", "no policyTypes, no rules: ingress isolated, egress untouched", tags("ingress", "deny-all")),
		d("ingress-rules-only", "no policyTypes, ingress rules: ingress only", tags("ingress", "pod-selector"),
			ingress(peers(podSel("b"))), defaultTypes()),
		d("egress-rules-only", "no policyTypes, egress rules: ingress AND egress isolated", tags("ingress", "egress", "namespace-selector"),
			egress(peers(nsSel("y"))), defaultTypes()),
		d("both-rules", "no policyTypes, both rules", tags("ingress", "egress", "pod-selector", "namespace-selector"),
			ingress(peers(nsSel("z"))), egress(peers(podSel("c"))), defaultTypes()),
		d("explicit-egress-no-rules", "policyTypes [Egress] and no rules: egress denied, ingress untouched", tags("egress", "deny-all"),
			egressTypes()),
		d("explicit-ingress-ignores-egress-rules", "policyTypes [Ingress] with egress rules: egress untouched", tags("ingress", "egress", "allow-all"),
			egress(peers(podSel("nobody"))), defaultTypes(), ingressTypes(), ingress(allowAll())),
	}
}

// generatedICMP covers ICMP: allowed by a rule only when it has no ports.
func generatedICMP() []pol.Case {
	icmp := probing(pol.ICMP, pol.TCP80, pol.UDP81)
	c := func(slug, desc string, ts []string, np ...pol.Step) pol.Case {
		return newCase("generated/icmp/"+slug, desc, append(tags("generated", "icmp"), ts...), np...)
	}
	return []pol.Case{
		c("deny-all-ingress", "isolation denies ICMP", tags("ingress", "deny-all"),
			create(policy("deny", selectAll(), ingress()), icmp)),
		c("rule-without-ports", "a rule without ports allows ICMP from its peers", tags("ingress", "namespace-selector"),
			create(policy("from-y", selectAll(), ingress(peers(nsSel("y")))), icmp)),
		c("rule-with-ports", "a rule with ports never allows ICMP", tags("ingress", "protocol"),
			create(policy("all-protocols", selectAll(), ingress(onPorts(protocol("TCP"), protocol("UDP"), protocol("SCTP")))), icmp)),
		c("egress-rule-without-ports", "an egress rule without ports allows ICMP to its peers", tags("egress", "pod-selector"),
			create(policy("to-b", selectPod("a"), egress(peers(podSel("b")))), icmp)),
		c("egress-rule-with-range", "an egress rule with a full port range still denies ICMP", tags("egress", "endport"),
			create(policy("all-tcp", selectPod("a"), egress(onPorts(portRange(1, 65535, "TCP")))), icmp)),
		c("ipblock-without-ports", "an ipBlock rule without ports allows ICMP from that IP", tags("ingress", "ipblock"),
			create(policy("from-z-c", selectPod("a"), ingress(peers(cidr("{z/c}")))), icmp)),
	}
}

// generatedSelf covers traffic from a pod to itself: loopback, allowed
// whatever the policies say, while the policy still acts on other peers.
func generatedSelf() []pol.Case {
	return []pol.Case{
		newCase("generated/self/ingress-allows-only-others", "x/a accepts x/b only; its own loopback still works", tags("generated", "self", "ingress", "pod-selector"),
			create(policy("a-from-b", selectPod("a"), ingress(peers(podSel("b")))))),
		newCase("generated/self/egress-allows-itself", "x/a may only talk to itself", tags("generated", "self", "egress", "pod-selector"),
			create(policy("a-to-a", selectPod("a"), egress(peers(podSel("a")))))),
	}
}

// generatedCases is every generated case.
func generatedCases() []pol.Case {
	var cs []pol.Case
	for _, f := range []func() []pol.Case{generatedPeers, generatedPeersPorts, generatedPorts, generatedDefaulting, generatedICMP, generatedSelf} {
		cs = append(cs, f()...)
	}
	return cs
}
