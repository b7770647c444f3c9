package policy

import (
	"errors"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestInvalidPolicies(t *testing.T) {
	a := match("pod", "a")
	tests := []struct {
		name  string
		np    networkingv1.NetworkPolicy
		field string // expected in the error
	}{
		{"bad cidr", netpol("x", "bad", a, ingress(peers(cidr("10.0.0.0/33")))), "spec.ingress[0].from[0].ipBlock.cidr"},
		{"except outside cidr", netpol("x", "bad", a, ingress(peers(cidr("10.0.0.0/16", "10.1.0.0/24")))), "spec.ingress[0].from[0].ipBlock.except[0]"},
		{"except equal to cidr", netpol("x", "bad", a, egress(peers(cidr("10.0.0.0/16", "10.0.0.0/16")))), "spec.egress[0].to[0].ipBlock.except[0]"},
		{"except of another family", netpol("x", "bad", a, ingress(peers(cidr("10.0.0.0/8", "2001:db8::/64")))), "ipBlock.except[0]"},
		{"bad except", netpol("x", "bad", a, ingress(peers(cidr("10.0.0.0/8", "nope")))), "ipBlock.except[0]"},
		{"endPort below port", netpol("x", "bad", a, ingress(peers().on(portRange(TCP, 81, 80)))), "spec.ingress[0].ports[0].endPort"},
		{"endPort above 65535", netpol("x", "bad", a, ingress(peers().on(portRange(TCP, 65000, 65536)))), "spec.ingress[0].ports[0].endPort"},
		{"endPort range too wide", netpol("x", "bad", a, ingress(peers().on(portRange(TCP, 2, 65535)))), "more than the 4096"},
		{"endPort with a named port", netpol("x", "bad", a, ingress(peers().on(withEnd(named(TCP, "serve-80-tcp"), 90)))), "spec.ingress[0].ports[0].endPort"},
		{"endPort without port", netpol("x", "bad", a, ingress(peers().on(withEnd(protoOnly(TCP), 90)))), "spec.ingress[0].ports[0].endPort"},
		{"port 0", netpol("x", "bad", a, ingress(peers().on(numPort(TCP, 0)))), "spec.ingress[0].ports[0].port"},
		{"bad port name", netpol("x", "bad", a, ingress(peers().on(named(TCP, "Not_A_Name")))), "spec.ingress[0].ports[0].port"},
		{"unknown protocol", netpol("x", "bad", a, egress(peers().on(numPort("ICMP", 1)))), "spec.egress[0].ports[0].protocol"},
		{"bad operator", netpol("x", "bad", a, ingress(peers(nsSel(expr("ns", "Near", "y"))))), "spec.ingress[0].from[0].namespaceSelector"},
		{"In without values", netpol("x", "bad", a, ingress(peers(podSel(expr("pod", metav1.LabelSelectorOpIn))))), "spec.ingress[0].from[0].podSelector"},
		{"bad label value", netpol("x", "bad", a, ingress(peers(podSel(match("pod", "no spaces"))))), "spec.ingress[0].from[0].podSelector"},
		{"empty peer", netpol("x", "bad", a, ingress(peers(networkingv1.NetworkPolicyPeer{}))), "spec.ingress[0].from[0]: Required"},
		{"ipBlock and selector", netpol("x", "bad", a, ingress(peers(networkingv1.NetworkPolicyPeer{
			PodSelector: all(), IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}}))), "may not specify both"},
		{"unknown policyType", netpol("x", "bad", a, types("Sideways")), "spec.policyTypes[0]"},
		{"bad podSelector", netpol("x", "bad", expr("pod", metav1.LabelSelectorOpExists, "a")), "spec.podSelector"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := standardState()
			good := netpol("y", "good", all(), ingress(peers(nsSel(match("ns", "x")))))
			s.Policies = []networkingv1.NetworkPolicy{tc.np, good}
			r, err := Compile(s, Local{NodeName: "node-1"}, nil)
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("want a *PolicyError, got %v", err)
			}
			if pe.Policy != "x/bad" || !strings.Contains(err.Error(), "networkpolicy x/bad") || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q should name x/bad and %q", err, tc.field)
			}
			// Fail-closed: x/a (or, for a bad podSelector, all of x) is isolated
			// and the policy allows nothing; the valid policy still applies.
			nodes := []Result{r}
			xa, xc, ya := ip(s, "x/a"), ip(s, "x/c"), ip(s, "y/a")
			if Simulate(nodes, ya, xa, ProtoTCP, 80) {
				t.Errorf("y/a -> x/a allowed despite the invalid policy isolating x/a")
			}
			if ep := r.Endpoints[xa]; len(ep.Keys) != 1 || ep.Keys[0].Identity != IdentityHost {
				t.Errorf("x/a keys %+v, want only the host entry", ep.Keys)
			}
			if wantXC := tc.name != "bad podSelector"; Simulate(nodes, ya, xc, ProtoTCP, 80) != wantXC {
				t.Errorf("y/a -> x/c: want allowed=%v", wantXC)
			}
			// The valid policy still applies; x/a's egress is isolated too when
			// the invalid policy has egress rules or an unknown type.
			egressIsolated := len(tc.np.Spec.Egress) > 0 || tc.name == "unknown policyType"
			if Simulate(nodes, xa, ya, ProtoUDP, 81) == egressIsolated {
				t.Errorf("x/a -> y/a: want allowed=%v", !egressIsolated)
			}
		})
	}
}

func TestPolicyErrors(t *testing.T) {
	s := standardState()
	s.Policies = []networkingv1.NetworkPolicy{
		netpol("z", "bad2", all(), types("Sideways")),
		netpol("x", "good", all()),
		netpol("x", "bad1", all(), ingress(peers(cidr("nope")))),
	}
	_, err := Compile(s, Local{NodeName: "node-1"}, nil)
	var got []string
	for _, pe := range PolicyErrors(err) {
		got = append(got, pe.Policy)
	}
	if strings.Join(got, " ") != "x/bad1 z/bad2" {
		t.Errorf("PolicyErrors = %v, want [x/bad1 z/bad2]", got)
	}
	if PolicyErrors(nil) != nil {
		t.Errorf("PolicyErrors(nil) not empty")
	}
}

func TestUnknownPolicyTypeIsolatesBothDirections(t *testing.T) {
	s := standardState()
	s.Policies = []networkingv1.NetworkPolicy{netpol("x", "bad", match("pod", "a"), types(typeIn, "Sideways"))}
	r, err := Compile(s, Local{NodeName: "node-1"}, nil)
	if err == nil {
		t.Fatal("want an error")
	}
	if ep := r.Endpoints[ip(s, "x/a")]; !ep.IngressEnforced || !ep.EgressEnforced {
		t.Errorf("x/a = %+v, want both directions enforced", ep)
	}
}

func TestValidEdges(t *testing.T) {
	s := standardState()
	s.Policies = []networkingv1.NetworkPolicy{
		netpol("x", "wide", all(), ingress(peers().on(portRange(UDP, 1, MaxPortRange)))),
		netpol("x", "top", all(), ingress(peers().on(portRange(SCTP, 65535, 65535)))),
		netpol("x", "v6", all(), ingress(peers(cidr("2001:db8::/32", "2001:db8:1::/48")))),
	}
	r, err := Compile(s, Local{NodeName: "node-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !Simulate([]Result{r}, ip(s, "y/b"), ip(s, "x/a"), ProtoUDP, MaxPortRange) ||
		Simulate([]Result{r}, ip(s, "y/b"), ip(s, "x/a"), ProtoUDP, MaxPortRange+1) ||
		!Simulate([]Result{r}, ip(s, "y/b"), ip(s, "x/a"), ProtoSCTP, 65535) {
		t.Errorf("range edges wrong")
	}
}

func withEnd(p networkingv1.NetworkPolicyPort, end int32) networkingv1.NetworkPolicyPort {
	p.EndPort = &end
	return p
}

// The full range 1-65535 is every port: it compiles, as one any-port key.
func TestFullPortRangeIsAnyPort(t *testing.T) {
	s := standardState()
	s.Policies = []networkingv1.NetworkPolicy{netpol("x", "all-tcp", all(), ingress(peers().on(portRange(TCP, 1, 65535))))}
	r, err := Compile(s, Local{NodeName: "node-1"}, nil)
	if err != nil {
		t.Fatalf("the full range must compile: %v", err)
	}
	if !Simulate([]Result{r}, ip(s, "y/b"), ip(s, "x/a"), ProtoTCP, 80) || Simulate([]Result{r}, ip(s, "y/b"), ip(s, "x/a"), ProtoUDP, 80) {
		t.Fatal("the full TCP range must allow every TCP port and no UDP port")
	}
}
