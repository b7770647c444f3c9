package cases

import (
	pol "github.com/cnilab/cnilab/e2e/policy"
)

// updates covers changes between probes: policies updated and deleted,
// namespace and pod labels that change what is selected, pods created and
// deleted.
func updates() []pol.Case {
	var cs []pol.Case
	c := func(slug, desc string, ts []string, steps ...pol.Step) {
		cs = append(cs, newCase("update/"+slug, desc, append(tags("update"), ts...), steps...))
	}
	for _, d := range directions {
		n := d.name
		c(n+"/allow-all-to-deny-all", "allow-all becomes deny-all", tags(n, "allow-all", "deny-all"),
			create(policy("p", selectAll(), d.rules(allowAll())), everything()),
			update(policy("p", selectAll(), d.rules()), only(d, "x/*")))
		c(n+"/delete-deny-all", "deny-all is deleted", tags(n, "deny-all"),
			create(policy("deny", selectAll(), d.rules()), only(d, "x/*")),
			remove("x", "deny", everything()))
		c(n+"/retarget", "the policy moves from x/a to x/b", tags(n, "pod-selector"),
			create(policy("p", selectPod("a"), d.rules(peers(podSel("c")))), only(d, "x/a", "x/c")),
			update(policy("p", selectPod("b"), d.rules(peers(podSel("c")))), only(d, "x/b", "x/c")))
		c(n+"/change-port", "TCP 80 becomes TCP 81", tags(n, "numbered-port", "tcp"),
			create(policy("p", selectPod("a"), d.rules(onPorts(tcp(80)))),
				expect(toward(d, "x/a", "*", false), toward(d, "x/a", "*", true, pol.TCP80))),
			update(policy("p", selectPod("a"), d.rules(onPorts(tcp(81)))),
				expect(toward(d, "x/a", "*", false), toward(d, "x/a", "*", true, pol.TCP81))))
		c(n+"/change-peer", "pod b becomes namespace y", tags(n, "pod-selector", "namespace-selector"),
			create(policy("p", selectPod("a"), d.rules(peers(podSel("b")))), only(d, "x/a", "x/b")),
			update(policy("p", selectPod("a"), d.rules(peers(nsSel("y")))), only(d, "x/a", "y/*")))
		c(n+"/namespace-label-added", "namespace y gains team=blue, which the policy names", tags(n, "labels", "namespace-selector"),
			create(policy("p", selectPod("a"), d.rules(peers(nsLabels("team", "blue")))), only(d, "x/a")),
			labelNamespace("y", labels("ns", "y", "team", "blue"), only(d, "x/a", "y/*")))
		c(n+"/namespace-label-removed", "namespace z loses team=blue, which the policy names", tags(n, "labels", "namespace-selector"),
			labelNamespace("z", labels("ns", "z", "team", "blue"), setup()),
			create(policy("p", selectPod("a"), d.rules(peers(nsLabels("team", "blue")))), only(d, "x/a", "z/*")),
			labelNamespace("z", labels("ns", "z"), only(d, "x/a")))
		c(n+"/pod-label-isolates", "x/b gains quarantine=true and becomes isolated", tags(n, "labels", "deny-all"),
			create(policy("quarantine", selectLabels("quarantine", "true"), d.rules()), everything()),
			labelPod("x", "b", labels("pod", "b", "quarantine", "true"), only(d, "x/b")))
		c(n+"/pod-label-selects-peer", "x/c gains role=client, which x/a's policy names", tags(n, "labels", "pod-selector"),
			create(policy("p", selectPod("a"), d.rules(peers(podLabels("role", "client")))), only(d, "x/a")),
			labelPod("x", "c", labels("pod", "c", "role", "client"), only(d, "x/a", "x/c")))
		c(n+"/pod-label-frees", "x/a loses the label its policy selects", tags(n, "labels", "deny-all"),
			labelPod("x", "a", labels("pod", "a", "locked", "yes"), setup()),
			create(policy("locked", selectExpr(exists("locked")), d.rules()), only(d, "x/a")),
			labelPod("x", "a", labels("pod", "a"), everything()))
		c(n+"/pod-created-in-isolated-namespace", "a new pod x/d is isolated by the namespace-wide policy", tags(n, "pod-lifecycle", "deny-all"),
			create(policy("deny", selectAll(), d.rules()), setup()),
			addPod("x", "d", labels("pod", "d"), only(d, "x/*")))
		c(n+"/types-added", "policyTypes grow from the other direction to both", tags("ingress", "egress"),
			create(policy("p", selectPod("a"), otherDirection(d).rules(peers(podSel("b")))), only(otherDirection(d), "x/a", "x/b")),
			update(policy("p", selectPod("a"), otherDirection(d).rules(peers(podSel("b"))), d.rules(peers(podSel("b")))),
				only(otherDirection(d), "x/a", "x/b"), only(d, "x/a", "x/b")))
		c(n+"/except-removed", "the except hole around y/b closes", tags(n, "ipblock", "except"),
			create(policy("p", selectPod("a"), d.rules(peers(cidr("{y/b}/4", "{y/b}")))), only(d, "x/a", "*"), expect(toward(d, "x/a", "y/b", false))),
			update(policy("p", selectPod("a"), d.rules(peers(cidr("{y/b}/4")))), only(d, "x/a", "*")))
	}
	c("ingress/pod-created-matching-peer", "a new pod y/d labelled pod=d is let in by x/a's policy", tags("ingress", "pod-lifecycle", "namespace-selector", "pod-selector", "and"),
		create(policy("from-d", selectPod("a"), ingress(peers(both(anyNamespace(), podSel("d"))))), expect(denied("*", "x/a"))),
		addPod("y", "d", labels("pod", "d"), expect(denied("*", "x/a"), allowed("y/d", "x/a"))))
	c("ingress/pod-deleted", "x/b, the only pod let in, is deleted", tags("ingress", "pod-lifecycle", "pod-selector"),
		create(policy("from-b", selectPod("a"), ingress(peers(podSel("b")))), expect(denied("*", "x/a"), allowed("x/b", "x/a"))),
		removePod("x", "b", expect(denied("*", "x/a"))))
	c("egress/pod-recreated-keeps-old-ipblock", "y/b comes back with a new IP; the policy still names the old one", tags("egress", "pod-lifecycle", "ipblock"),
		create(policy("to-y-b", selectPod("a"), egress(peers(cidr("{y/b}")))), expect(denied("x/a", "*"), allowed("x/a", "y/b"))),
		removePod("y", "b", setup()),
		addPod("y", "b", labels("pod", "b"), expect(denied("x/a", "*"))))
	c("ingress/namespace-label-swap", "the ns=y label moves from y to z", tags("ingress", "labels", "namespace-selector"),
		create(policy("from-ns-y", selectPod("a"), ingress(peers(nsSel("y")))), expect(denied("*", "x/a"), allowed("y/*", "x/a"))),
		labelNamespace("y", labels("ns", "old-y"), setup()),
		labelNamespace("z", labels("ns", "y"), expect(denied("*", "x/a"), allowed("z/*", "x/a"))))
	return cs
}

// otherDirection returns the direction that is not d.
func otherDirection(d direction) direction {
	if d.name == "ingress" {
		return directions[1]
	}
	return directions[0]
}
