package policy

import (
	"strings"
	"testing"
)

func TestResolveCIDR(t *testing.T) {
	m := testModel() // x/b is 10.244.1.11
	m6, _ := m.WithPodIP("y/a", "fd00:10:244:2::a")
	for _, tc := range []struct {
		in, want string
		m        Model
	}{
		{"{x/b}", "10.244.1.11/32", m},
		{"{x/b}/32", "10.244.1.11/32", m},
		{"{x/b}/24", "10.244.1.0/24", m},
		{"{x/b}/4", "0.0.0.0/4", m},
		{"{x/b}/0", "0.0.0.0/0", m},
		{"{y/a}", "fd00:10:244:2::a/128", m6},
		{"{y/a}/64", "fd00:10:244:2::/64", m6},
		{"10.0.0.0/8", "10.0.0.0/8", m},
	} {
		got, err := ResolveCIDR(tc.in, tc.m)
		if err != nil || got != tc.want {
			t.Errorf("ResolveCIDR(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	noIP := NewStandardModel()
	for _, tc := range []struct {
		in, err string
		m       Model
	}{
		{"{x/q}", "not in the model", m},
		{"{x/b}/33", "out of range", m},
		{"{x/b}", "no usable IP", noIP},
	} {
		if _, err := ResolveCIDR(tc.in, tc.m); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ResolveCIDR(%q) error = %v, want %q", tc.in, err, tc.err)
		}
	}
}

func TestResolvePolicy(t *testing.T) {
	m := testModel()
	np := netpol("x", "p", all(), ingressRules(peers(ipPeer("{y/b}/16", "{y/b}"))), egressRules(peers(ipPeer("{z/c}"), podPeer(selp("pod", "a")))))
	got, err := Resolve(np, m)
	if err != nil {
		t.Fatal(err)
	}
	if b := got.Spec.Ingress[0].From[0].IPBlock; b.CIDR != "10.244.0.0/16" || b.Except[0] != "10.244.2.11/32" {
		t.Errorf("ingress ipBlock = %+v", b)
	}
	if b := got.Spec.Egress[0].To[0].IPBlock; b.CIDR != "10.244.3.12/32" {
		t.Errorf("egress ipBlock = %+v", b)
	}
	if np.Spec.Ingress[0].From[0].IPBlock.CIDR != "{y/b}/16" {
		t.Error("Resolve changed its input")
	}
	if err := Validate(got); err != nil {
		t.Error(err)
	}
	if !IsTemplate("{x/a}/4") || IsTemplate("10.0.0.0/8") {
		t.Error("IsTemplate")
	}
}
