package policy

import (
	networkingv1 "k8s.io/api/networking/v1"
)

// Case is one policy test: a sequence of steps that start from the
// standard model with no policies. Each step changes the cluster (at most
// one action) and then probes; the expected result of every probe is
// computed by the oracle from the state after the step.
type Case struct {
	// Name is unique and stable; it names the case in reports.
	Name string `json:"name"`
	// Description says what the case checks, in a sentence.
	Description string `json:"description,omitempty"`
	// Tags classify the case (ingress, egress, named-port, ipblock, update,
	// sctp, upstream, generated, …) so runs can select cases.
	Tags []string `json:"tags,omitempty"`
	// Steps run in order.
	Steps []Step `json:"steps"`
}

// Step is one action followed by probes. Exactly one action field is set,
// or none for a step that only probes.
type Step struct {
	// Description says what the step does, for logs.
	Description string `json:"description,omitempty"`

	// CreatePolicy creates a policy (its ipBlock CIDRs may be pod IP
	// templates, see Resolve).
	CreatePolicy *networkingv1.NetworkPolicy `json:"createPolicy,omitempty"`
	// UpdatePolicy replaces the policy of the same namespace and name.
	UpdatePolicy *networkingv1.NetworkPolicy `json:"updatePolicy,omitempty"`
	// DeletePolicy deletes a policy.
	DeletePolicy *ObjectRef `json:"deletePolicy,omitempty"`
	// SetNamespaceLabels replaces the labels of a namespace (the API
	// server keeps kubernetes.io/metadata.name).
	SetNamespaceLabels *NamespaceLabels `json:"setNamespaceLabels,omitempty"`
	// SetPodLabels replaces the labels of a pod.
	SetPodLabels *PodLabels `json:"setPodLabels,omitempty"`
	// CreatePod creates a pod (with the standard container ports unless it
	// lists its own).
	CreatePod *Pod `json:"createPod,omitempty"`
	// DeletePod deletes a pod.
	DeletePod *ObjectRef `json:"deletePod,omitempty"`

	// Probes lists the ports and protocols to probe between every pair of
	// pods after the action; empty means DefaultProbes.
	Probes []PortProtocol `json:"probes,omitempty"`
	// SkipProbes makes a set-up step probe nothing.
	SkipProbes bool `json:"skipProbes,omitempty"`
	// Expect optionally states hand-written expectations (see ExpectRule).
	// The oracle, not these, decides what the suite expects; the unit tests
	// check that the two agree.
	Expect []ExpectRule `json:"expect,omitempty"`
}

// ObjectRef names a namespaced object.
type ObjectRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Key returns "namespace/name".
func (r ObjectRef) Key() string { return r.Namespace + "/" + r.Name }

// NamespaceLabels is the label set a namespace is given.
type NamespaceLabels struct {
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels"`
}

// PodLabels is the label set a pod is given.
type PodLabels struct {
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels"`
}

// ProbeList returns what the step probes: nothing if SkipProbes, else its
// Probes, or DefaultProbes.
func (s Step) ProbeList() []PortProtocol {
	if s.SkipProbes {
		return nil
	}
	if len(s.Probes) == 0 {
		return DefaultProbes()
	}
	return s.Probes
}

// ActionName names the step's action ("createPolicy", …, or "none").
func (s Step) ActionName() string {
	names := s.actions()
	if len(names) == 0 {
		return "none"
	}
	return names[0]
}

// actions lists the names of the action fields that are set.
func (s Step) actions() []string {
	var names []string
	for _, a := range []struct {
		set  bool
		name string
	}{
		{s.CreatePolicy != nil, "createPolicy"},
		{s.UpdatePolicy != nil, "updatePolicy"},
		{s.DeletePolicy != nil, "deletePolicy"},
		{s.SetNamespaceLabels != nil, "setNamespaceLabels"},
		{s.SetPodLabels != nil, "setPodLabels"},
		{s.CreatePod != nil, "createPod"},
		{s.DeletePod != nil, "deletePod"},
	} {
		if a.set {
			names = append(names, a.name)
		}
	}
	return names
}

// HasTag reports whether c carries tag.
func (c Case) HasTag(tag string) bool {
	for _, t := range c.Tags {
		if t == tag {
			return true
		}
	}
	return false
}
