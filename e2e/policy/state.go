package policy

import (
	"fmt"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
)

// State is the cluster as a case sees it: the model and the policies in
// force, with their IP templates resolved when they were applied (a policy
// keeps the IPs it was created with even if a pod is later re-created with
// another IP, as in a real cluster).
type State struct {
	Model    Model
	Policies []networkingv1.NetworkPolicy
}

// NewState returns the state of m with no policies.
func NewState(m Model) State { return State{Model: m} }

// Resolve returns step with the pod IP templates of its policy resolved
// against s: what the suite must send to the API server.
func (s State) Resolve(step Step) (Step, error) {
	out := step
	for _, p := range []**networkingv1.NetworkPolicy{&out.CreatePolicy, &out.UpdatePolicy} {
		if *p == nil {
			continue
		}
		np, err := Resolve(**p, s.Model)
		if err != nil {
			return step, err
		}
		*p = &np
	}
	return out, nil
}

// Apply returns the state after step's action. It fails, leaving s alone,
// when the step sets more than one action, when a policy is invalid (after
// resolution), or when the action's object does or does not exist as it
// must (creating what exists, changing what does not).
func (s State) Apply(step Step) (State, error) {
	if names := step.actions(); len(names) > 1 {
		return s, fmt.Errorf("step sets %d actions %v; a step has at most one", len(names), names)
	}
	step, err := s.Resolve(step)
	if err != nil {
		return s, err
	}
	next := State{Model: s.Model.Clone(), Policies: slices.Clone(s.Policies)}
	find := func(ns, name string) int {
		return slices.IndexFunc(next.Policies, func(p networkingv1.NetworkPolicy) bool { return p.Namespace == ns && p.Name == name })
	}
	switch {
	case step.CreatePolicy != nil, step.UpdatePolicy != nil:
		np, create := step.CreatePolicy, true
		if np == nil {
			np, create = step.UpdatePolicy, false
		}
		if err := Validate(*np); err != nil {
			return s, fmt.Errorf("policy %s/%s: %w", np.Namespace, np.Name, err)
		}
		i := find(np.Namespace, np.Name)
		switch {
		case create && i >= 0:
			return s, fmt.Errorf("createPolicy %s/%s: already exists", np.Namespace, np.Name)
		case !create && i < 0:
			return s, fmt.Errorf("updatePolicy %s/%s: no such policy", np.Namespace, np.Name)
		case create:
			if _, ok := next.Model.Namespace(np.Namespace); !ok {
				return s, fmt.Errorf("createPolicy %s/%s: namespace %q is not in the model", np.Namespace, np.Name, np.Namespace)
			}
			next.Policies = append(next.Policies, *np)
		default:
			next.Policies[i] = *np
		}
	case step.DeletePolicy != nil:
		i := find(step.DeletePolicy.Namespace, step.DeletePolicy.Name)
		if i < 0 {
			return s, fmt.Errorf("deletePolicy %s: no such policy", step.DeletePolicy.Key())
		}
		next.Policies = slices.Delete(next.Policies, i, i+1)
	case step.SetNamespaceLabels != nil:
		next.Model, err = next.Model.WithNamespaceLabels(step.SetNamespaceLabels.Namespace, step.SetNamespaceLabels.Labels)
	case step.SetPodLabels != nil:
		key := step.SetPodLabels.Namespace + "/" + step.SetPodLabels.Name
		next.Model, err = next.Model.WithPodLabels(key, step.SetPodLabels.Labels)
	case step.CreatePod != nil:
		next.Model, err = next.Model.WithPod(*step.CreatePod)
	case step.DeletePod != nil:
		next.Model, err = next.Model.WithoutPod(step.DeletePod.Key())
	}
	if err != nil {
		return s, err
	}
	return next, nil
}

// Reachability returns the expected truth table of pp in s.
func (s State) Reachability(pp PortProtocol) *Reachability {
	return NewReachability(s.Policies, s.Model, pp)
}

// Reachabilities returns the expected truth tables of every port and
// protocol step probes, in s (the state after step).
func (s State) Reachabilities(step Step) []*Reachability {
	var rs []*Reachability
	for _, pp := range step.ProbeList() {
		rs = append(rs, s.Reachability(pp))
	}
	return rs
}
