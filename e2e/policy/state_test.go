package policy

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

func ptrPolicy(np networkingv1.NetworkPolicy) *networkingv1.NetworkPolicy { return &np }

func TestStateApply(t *testing.T) {
	s := NewState(testModel())
	steps := []Step{
		{CreatePolicy: ptrPolicy(netpol("x", "allow-ns2", sel("pod", "a"), ingressRules(peers(nsPeer(selp("ns2", "updated"))))))},
		{SetNamespaceLabels: &NamespaceLabels{Namespace: "y", Labels: labels("ns", "y", "ns2", "updated")}},
		{SetPodLabels: &PodLabels{Namespace: "x", Name: "b", Labels: labels("pod", "a")}},
		{CreatePod: &Pod{Namespace: "z", Name: "d", Labels: labels("pod", "d"), IP: "10.244.3.99"}},
		{DeletePod: &ObjectRef{Namespace: "z", Name: "a"}},
		{UpdatePolicy: ptrPolicy(netpol("x", "allow-ns2", sel("pod", "a"), ingressRules(peers(ipPeer("{z/d}")))))},
	}
	check := func(step int, from, to string, want bool) {
		t.Helper()
		v := Allowed(s.Policies, s.Model, PodTraffic(mustPod(s.Model, from), mustPod(s.Model, to), 80, tcp))
		if v.Allowed != want {
			t.Errorf("after step %d: %s -> %s %s, want allowed=%v", step, from, to, v, want)
		}
	}
	var err error
	for i, st := range steps {
		if s, err = s.Apply(st); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		switch i {
		case 0:
			check(i, "y/a", "x/a", false)
		case 1:
			check(i, "y/a", "x/a", true)
			check(i, "z/a", "x/a", false)
			if l := s.Model.NamespaceLabels("y"); l[NamespaceNameLabel] != "y" {
				t.Errorf("namespace name label dropped: %v", l)
			}
		case 2:
			check(i, "z/a", "x/b", false) // x/b now carries pod=a
		case 3:
			check(i, "z/d", "x/a", false)
		case 5:
			check(i, "z/d", "x/a", true)
			check(i, "y/a", "x/a", false)
		}
	}
	if len(s.Model.Pods) != 9 || len(s.Policies) != 1 {
		t.Errorf("pods %d policies %d", len(s.Model.Pods), len(s.Policies))
	}
	if got := s.Policies[0].Spec.Ingress[0].From[0].IPBlock.CIDR; got != "10.244.3.99/32" {
		t.Errorf("stored policy not resolved: %s", got)
	}
	// A policy keeps the IP it was resolved with when the pod comes back with another.
	s, _ = s.Apply(Step{DeletePod: &ObjectRef{Namespace: "z", Name: "d"}})
	s, _ = s.Apply(Step{CreatePod: &Pod{Namespace: "z", Name: "d", Labels: labels("pod", "d"), IP: "10.244.3.100"}})
	check(7, "z/d", "x/a", false)
	if s, err = s.Apply(Step{DeletePolicy: &ObjectRef{Namespace: "x", Name: "allow-ns2"}}); err != nil || len(s.Policies) != 0 {
		t.Fatalf("delete: %v", err)
	}
	check(8, "z/d", "x/a", true)
}

func TestStateApplyErrors(t *testing.T) {
	s := NewState(testModel())
	p := netpol("x", "p", all())
	s, _ = s.Apply(Step{CreatePolicy: &p})
	bad := netpol("x", "bad", all(), ingressRules(peers(ipPeer("10.0.0.1/24"))))
	elsewhere := netpol("w", "p", all())
	for _, tc := range []struct {
		step Step
		err  string
	}{
		{Step{CreatePolicy: &p}, "already exists"},
		{Step{UpdatePolicy: ptrPolicy(netpol("x", "q", all()))}, "no such policy"},
		{Step{DeletePolicy: &ObjectRef{Namespace: "x", Name: "q"}}, "no such policy"},
		{Step{CreatePolicy: &bad}, "spec.ingress[0].from[0].ipBlock.cidr"},
		{Step{CreatePolicy: &elsewhere}, "namespace \"w\""},
		{Step{CreatePolicy: ptrPolicy(netpol("x", "t", all(), ingressRules(peers(ipPeer("{x/q}")))))}, "not in the model"},
		{Step{SetNamespaceLabels: &NamespaceLabels{Namespace: "w"}}, "not in the model"},
		{Step{SetPodLabels: &PodLabels{Namespace: "x", Name: "q"}}, "not in the model"},
		{Step{CreatePod: &Pod{Namespace: "x", Name: "a"}}, "already in the model"},
		{Step{CreatePod: &Pod{Namespace: "w", Name: "a"}}, "namespace \"w\""},
		{Step{DeletePod: &ObjectRef{Namespace: "x", Name: "q"}}, "not in the model"},
		{Step{DeletePod: &ObjectRef{Namespace: "x", Name: "a"}, DeletePolicy: &ObjectRef{Namespace: "x", Name: "p"}}, "at most one"},
	} {
		_, err := s.Apply(tc.step)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want %q", tc.step.ActionName(), err, tc.err)
		}
	}
	if len(s.Policies) != 1 {
		t.Error("a failed Apply changed the state")
	}
}

func TestWithPodIPs(t *testing.T) {
	m, err := NewStandardModel().WithPodIPs(map[string]string{"x/a": "10.1.0.5", "z/c": "fd00::c"})
	if err != nil || mustPod(m, "x/a").IP != "10.1.0.5" || mustPod(m, "z/c").IP != "fd00::c" || mustPod(m, "y/b").IP != "" {
		t.Fatalf("%v %+v", err, m.Pods)
	}
	if _, err := m.WithPodIPs(map[string]string{"q/a": "10.0.0.1"}); err == nil {
		t.Error("unknown pod accepted")
	}
}
