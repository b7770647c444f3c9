package policy

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type want struct {
	from, to string
	pp       PortProtocol
	allowed  bool
}

func allow(from, to string, pp PortProtocol) want { return want{from, to, pp, true} }
func deny(from, to string, pp PortProtocol) want  { return want{from, to, pp, false} }

type oracleTest struct {
	name     string
	policies []networkingv1.NetworkPolicy
	wants    []want
}

func runOracle(t *testing.T, m Model, tests []oracleTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, np := range tt.policies {
				if err := Validate(np); err != nil {
					t.Fatalf("test policy invalid: %v", err)
				}
			}
			for _, w := range tt.wants {
				tr := PodTraffic(mustPod(m, w.from), mustPod(m, w.to), w.pp.Port, w.pp.Protocol)
				if v := Allowed(tt.policies, m, tr); v.Allowed != w.allowed {
					t.Errorf("%s: got %s, want allowed=%v", tr, v, w.allowed)
				}
			}
		})
	}
}

func TestDefaultingAndIsolation(t *testing.T) {
	runOracle(t, testModel(), []oracleTest{
		{"no policies allow everything", nil, []want{
			allow("x/a", "y/b", TCP80), allow("x/a", "x/a", SCTP81), allow("z/c", "x/a", ICMP),
		}},
		{"empty policyTypes and no rules: ingress only", []networkingv1.NetworkPolicy{
			netpol("x", "p", all()),
		}, []want{
			deny("y/a", "x/a", TCP80), deny("x/b", "x/a", UDP81), allow("x/a", "y/a", TCP80), allow("y/a", "y/b", TCP80),
		}},
		{"empty policyTypes with egress rules: ingress and egress", []networkingv1.NetworkPolicy{
			netpol("x", "p", all(), egressRules(peers(nsPeer(selp("ns", "y"))))),
		}, []want{
			deny("y/a", "x/a", TCP80),  // ingress isolated, no ingress rule
			allow("x/a", "y/a", TCP80), // egress rule 0
			deny("x/a", "z/a", TCP80),  // egress isolated, z not selected
			allow("z/a", "y/a", TCP80), // neither end selected
			deny("x/a", "x/b", TCP80),  // both directions isolate
		}},
		{"empty egress list does not add Egress", []networkingv1.NetworkPolicy{
			netpol("x", "p", all(), ingressRules(anyRule()), egressRules()),
		}, []want{
			allow("x/a", "z/a", TCP80), allow("z/a", "x/a", TCP80),
		}},
		{"policyTypes Egress only: ingress not isolated", []networkingv1.NetworkPolicy{
			netpol("x", "p", all(), types(egr)),
		}, []want{
			allow("y/a", "x/a", TCP80), deny("x/a", "y/a", TCP80), deny("x/a", "x/b", TCP80),
		}},
		{"policyTypes Ingress only ignores egress rules", []networkingv1.NetworkPolicy{
			netpol("x", "p", all(), types(ing), ingressRules(anyRule()), egressRules(peers(podPeer(selp("pod", "none"))))),
		}, []want{
			allow("x/a", "y/a", TCP80), allow("y/a", "x/a", TCP80),
		}},
		{"policyTypes both with no rules deny both ways", []networkingv1.NetworkPolicy{
			netpol("x", "p", all(), types(ing, egr)),
		}, []want{
			deny("x/a", "y/a", TCP80), deny("y/a", "x/a", TCP80), allow("y/a", "z/a", TCP80),
		}},
		{"policy isolates only pods of its namespace", []networkingv1.NetworkPolicy{
			netpol("y", "p", all(), types(ing, egr)),
		}, []want{
			allow("x/a", "z/b", TCP80), deny("x/a", "y/a", TCP80), deny("y/c", "z/a", TCP80),
		}},
		{"podSelector isolates only matching pods", []networkingv1.NetworkPolicy{
			netpol("x", "p", sel("pod", "a")),
		}, []want{
			deny("y/a", "x/a", TCP80), allow("y/a", "x/b", TCP80), allow("x/a", "x/b", TCP80),
		}},
		{"podSelector with matchExpressions NotIn", []networkingv1.NetworkPolicy{
			netpol("x", "p", *expr("pod", metav1.LabelSelectorOpNotIn, "a")),
		}, []want{
			allow("y/a", "x/a", TCP80), deny("y/a", "x/b", TCP80), deny("y/a", "x/c", TCP80),
		}},
		{"union: deny-all plus allow-all allows", []networkingv1.NetworkPolicy{
			netpol("x", "deny", all(), types(ing, egr)),
			netpol("x", "allow", all(), types(ing, egr), ingressRules(anyRule()), egressRules(anyRule())),
		}, []want{
			allow("x/a", "y/a", TCP80), allow("y/a", "x/a", UDP81), allow("x/a", "x/a", ICMP),
		}},
		{"union of two port policies", []networkingv1.NetworkPolicy{
			netpol("x", "p80", sel("pod", "a"), ingressRules(anyRule().on(portNum(80)))),
			netpol("x", "p81", sel("pod", "a"), ingressRules(anyRule().on(portNum(81, udp)))),
		}, []want{
			allow("y/a", "x/a", TCP80), allow("y/a", "x/a", UDP81), deny("y/a", "x/a", TCP81), deny("y/a", "x/a", UDP80),
		}},
	})
}

func TestDirectionsAreIndependent(t *testing.T) {
	runOracle(t, testModel(), []oracleTest{
		{"ingress isolation leaves egress alone", []networkingv1.NetworkPolicy{
			netpol("x", "p", sel("pod", "a"), types(ing)),
		}, []want{
			allow("x/a", "y/a", TCP80), allow("x/a", "x/b", TCP80), deny("x/b", "x/a", TCP80),
		}},
		{"egress isolation leaves ingress alone", []networkingv1.NetworkPolicy{
			netpol("x", "p", sel("pod", "a"), types(egr)),
		}, []want{
			deny("x/a", "x/b", TCP80), allow("x/b", "x/a", TCP80),
		}},
		{"egress of source denies although destination allows ingress", []networkingv1.NetworkPolicy{
			netpol("x", "egress-to-y-a", sel("pod", "a"), egressRules(peers(nsPodPeer(selp("ns", "y"), selp("pod", "a"))))),
			netpol("y", "in-a", sel("pod", "a"), ingressRules(peers(nsPodPeer(selp("ns", "x"), selp("pod", "a"))))),
			netpol("y", "in-b", sel("pod", "b"), ingressRules(peers(nsPodPeer(selp("ns", "x"), selp("pod", "a"))))),
		}, []want{
			allow("x/a", "y/a", TCP80), deny("x/a", "y/b", TCP80), deny("x/b", "y/a", TCP80), allow("x/b", "y/c", TCP80),
		}},
		{"ingress of destination denies although source allows egress", []networkingv1.NetworkPolicy{
			netpol("x", "egress-all", sel("pod", "a"), egressRules(anyRule())),
			netpol("y", "deny", all()),
		}, []want{
			deny("x/a", "y/a", TCP80), allow("x/a", "z/a", TCP80),
		}},
		{"loopback is allowed despite an ingress deny", []networkingv1.NetworkPolicy{
			netpol("x", "p", all()),
		}, []want{
			allow("x/a", "x/a", TCP80), allow("x/b", "x/b", UDP80), deny("x/a", "x/b", TCP80),
		}},
		{"loopback is allowed despite an egress deny", []networkingv1.NetworkPolicy{
			netpol("x", "p", sel("pod", "a"), types(egr)),
		}, []want{
			allow("x/a", "x/a", TCP80), deny("x/a", "x/b", TCP80), allow("x/b", "x/b", TCP80),
		}},
		{"self traffic allowed by a rule selecting itself", []networkingv1.NetworkPolicy{
			netpol("x", "p", sel("pod", "a"), ingressRules(peers(podPeer(selp("pod", "a"))))),
		}, []want{
			allow("x/a", "x/a", TCP80), deny("x/b", "x/a", TCP80),
		}},
	})
}

func TestVerdictExplains(t *testing.T) {
	m := testModel()
	ps := []networkingv1.NetworkPolicy{
		netpol("x", "deny", all()),
		netpol("x", "allow-b", sel("pod", "a"), ingressRules(peers(podPeer(selp("pod", "c"))), peers(podPeer(selp("pod", "b"))))),
		netpol("y", "egress", all(), types(egr)),
	}
	v := Allowed(ps, m, PodTraffic(mustPod(m, "x/b"), mustPod(m, "x/a"), 80, tcp))
	if !v.Allowed || v.Egress.Isolated || v.Egress.Pod != "x/b" {
		t.Fatalf("x/b -> x/a: %+v", v)
	}
	if got := v.Ingress.Isolating; len(got) != 2 || got[0] != "x/deny" || got[1] != "x/allow-b" {
		t.Errorf("isolating = %v", got)
	}
	if got := v.Ingress.AllowedBy; len(got) != 1 || got[0] != (RuleRef{"x/allow-b", 1}) {
		t.Errorf("allowed by = %v", got)
	}
	want := "allowed (egress of x/b: not isolated; ingress of x/a: isolated by [x/deny x/allow-b], allowed by x/allow-b ingress[1])"
	if v.String() != want {
		t.Errorf("String() =\n%s\nwant\n%s", v, want)
	}
	v = Allowed(ps, m, PodTraffic(mustPod(m, "y/a"), mustPod(m, "z/a"), 80, tcp))
	want = "denied (egress of y/a: isolated by [y/egress], no rule allows; ingress of z/a: not isolated)"
	if v.Allowed || v.String() != want {
		t.Errorf("String() =\n%s\nwant\n%s", v, want)
	}
}
