package cases

import (
	networkingv1 "k8s.io/api/networking/v1"

	pol "github.com/cnilab/cnilab/e2e/policy"
)

// stepOpt changes a step under construction.
type stepOpt func(*pol.Step)

// probing sets what the step probes.
func probing(pps ...pol.PortProtocol) stepOpt {
	return func(s *pol.Step) { s.Probes = pps }
}

// setup makes the step probe nothing.
func setup() stepOpt { return func(s *pol.Step) { s.SkipProbes = true } }

// expect adds hand-written expectations.
func expect(rules ...pol.ExpectRule) stepOpt {
	return func(s *pol.Step) { s.Expect = append(s.Expect, rules...) }
}

// says describes the step.
func says(text string) stepOpt { return func(s *pol.Step) { s.Description = text } }

func step(s pol.Step, opts []stepOpt) pol.Step {
	for _, o := range opts {
		o(&s)
	}
	return s
}

// create is a step creating np.
func create(np networkingv1.NetworkPolicy, opts ...stepOpt) pol.Step {
	return step(pol.Step{CreatePolicy: &np}, opts)
}

// update is a step replacing the policy of np's namespace and name by np.
func update(np networkingv1.NetworkPolicy, opts ...stepOpt) pol.Step {
	return step(pol.Step{UpdatePolicy: &np}, opts)
}

// remove is a step deleting policy ns/name.
func remove(ns, name string, opts ...stepOpt) pol.Step {
	return step(pol.Step{DeletePolicy: &pol.ObjectRef{Namespace: ns, Name: name}}, opts)
}

// labelNamespace is a step giving namespace ns exactly the labels kv (and
// its name label).
func labelNamespace(ns string, kv []string, opts ...stepOpt) pol.Step {
	return step(pol.Step{SetNamespaceLabels: &pol.NamespaceLabels{Namespace: ns, Labels: pairs(kv)}}, opts)
}

// labelPod is a step giving pod ns/name exactly the labels kv.
func labelPod(ns, name string, kv []string, opts ...stepOpt) pol.Step {
	return step(pol.Step{SetPodLabels: &pol.PodLabels{Namespace: ns, Name: name, Labels: pairs(kv)}}, opts)
}

// addPod is a step creating pod ns/name with labels kv and the standard
// ports.
func addPod(ns, name string, kv []string, opts ...stepOpt) pol.Step {
	return step(pol.Step{CreatePod: &pol.Pod{Namespace: ns, Name: name, Labels: pairs(kv)}}, opts)
}

// removePod is a step deleting pod ns/name.
func removePod(ns, name string, opts ...stepOpt) pol.Step {
	return step(pol.Step{DeletePod: &pol.ObjectRef{Namespace: ns, Name: name}}, opts)
}

// probe is a step with no action.
func probe(opts ...stepOpt) pol.Step { return step(pol.Step{}, opts) }

// labels is kv, for readability at call sites: labels("pod", "b").
func labels(kv ...string) []string { return kv }

// Expectations, upstream style: over a table that starts all allowed,
// allowed(from, to) and denied(from, to) set the pairs matching the
// patterns, in order. With ports, they apply to those only.

func allowed(from, to string, pps ...pol.PortProtocol) pol.ExpectRule {
	return pol.ExpectRule{From: from, To: to, Allowed: true, Ports: pps}
}

func denied(from, to string, pps ...pol.PortProtocol) pol.ExpectRule {
	return pol.ExpectRule{From: from, To: to, Allowed: false, Ports: pps}
}

// newCase returns a case.
func newCase(name, description string, tags []string, steps ...pol.Step) pol.Case {
	return pol.Case{Name: name, Description: description, Tags: tags, Steps: steps}
}

// tags is its arguments, for readability.
func tags(ts ...string) []string { return ts }
