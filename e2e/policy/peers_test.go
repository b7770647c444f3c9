package policy

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
)

// target returns a policy isolating x/a for ingress with one rule from ps.
func target(ps ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicy {
	return []networkingv1.NetworkPolicy{netpol("x", "p", sel("pod", "a"), ingressRules(peers(ps...)))}
}

func TestPeers(t *testing.T) {
	runOracle(t, testModel(), []oracleTest{
		{"podSelector alone selects pods of the policy namespace", target(podPeer(selp("pod", "b"))), []want{
			allow("x/b", "x/a", TCP80), deny("y/b", "x/a", TCP80), deny("x/c", "x/a", TCP80),
		}},
		{"empty podSelector alone selects all pods of the policy namespace", target(podPeer(&metav1.LabelSelector{})), []want{
			allow("x/a", "x/a", TCP80), allow("x/c", "x/a", TCP80), deny("y/a", "x/a", TCP80),
		}},
		{"namespaceSelector alone selects all pods of those namespaces", target(nsPeer(selp("ns", "y"))), []want{
			allow("y/a", "x/a", TCP80), allow("y/c", "x/a", TCP80), deny("x/b", "x/a", TCP80), deny("z/a", "x/a", TCP80),
		}},
		{"empty namespaceSelector selects every namespace", target(nsPeer(&metav1.LabelSelector{})), []want{
			allow("x/b", "x/a", TCP80), allow("z/c", "x/a", TCP80),
		}},
		{"namespaceSelector on the default name label", target(nsPeer(selp(NamespaceNameLabel, "z"))), []want{
			allow("z/b", "x/a", TCP80), deny("y/b", "x/a", TCP80),
		}},
		{"both selectors in one peer AND", target(nsPodPeer(selp("ns", "y"), selp("pod", "b"))), []want{
			allow("y/b", "x/a", TCP80), deny("y/a", "x/a", TCP80), deny("x/b", "x/a", TCP80), deny("z/b", "x/a", TCP80),
		}},
		{"two peers OR", target(nsPeer(selp("ns", "y")), podPeer(selp("pod", "b"))), []want{
			allow("y/a", "x/a", TCP80), allow("x/b", "x/a", TCP80), deny("z/b", "x/a", TCP80), deny("x/c", "x/a", TCP80),
		}},
		{"empty namespaceSelector and podSelector: pod b everywhere", target(nsPodPeer(&metav1.LabelSelector{}, selp("pod", "b"))), []want{
			allow("x/b", "x/a", TCP80), allow("z/b", "x/a", TCP80), deny("z/c", "x/a", TCP80),
		}},
		{"matchExpressions In", target(podPeer(expr("pod", metav1.LabelSelectorOpIn, "b", "c"))), []want{
			allow("x/b", "x/a", TCP80), allow("x/c", "x/a", TCP80), deny("y/b", "x/a", TCP80),
		}},
		{"matchExpressions NotIn on namespaces", target(nsPeer(expr("ns", metav1.LabelSelectorOpNotIn, "x"))), []want{
			allow("y/a", "x/a", TCP80), allow("z/c", "x/a", TCP80), deny("x/b", "x/a", TCP80),
		}},
		{"matchExpressions NotIn matches pods without the key", target(podPeer(expr("team", metav1.LabelSelectorOpNotIn, "red"))), []want{
			allow("x/b", "x/a", TCP80),
		}},
		{"matchExpressions Exists", target(nsPodPeer(&metav1.LabelSelector{}, expr("pod", metav1.LabelSelectorOpExists))), []want{
			allow("z/c", "x/a", TCP80),
		}},
		{"matchExpressions Exists on a missing key", target(podPeer(expr("team", metav1.LabelSelectorOpExists))), []want{
			deny("x/b", "x/a", TCP80),
		}},
		{"matchExpressions DoesNotExist", target(nsPeer(expr("team", metav1.LabelSelectorOpDoesNotExist))), []want{
			allow("y/b", "x/a", TCP80),
		}},
		{"matchExpressions DoesNotExist on a present key", target(podPeer(expr("pod", metav1.LabelSelectorOpDoesNotExist))), []want{
			deny("x/b", "x/a", TCP80),
		}},
		{"matchLabels and matchExpressions AND", target(podPeer(&metav1.LabelSelector{
			MatchLabels:      labels("pod", "b"),
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "pod", Operator: metav1.LabelSelectorOpIn, Values: []string{"c"}}},
		})), []want{
			deny("x/b", "x/a", TCP80), deny("x/c", "x/a", TCP80),
		}},
		{"missing from matches every source", []networkingv1.NetworkPolicy{
			netpol("x", "p", sel("pod", "a"), ingressRules(anyRule().on(portNum(80)))),
		}, []want{
			allow("z/c", "x/a", TCP80), deny("z/c", "x/a", TCP81),
		}},
		{"egress podSelector alone selects pods of the policy namespace", []networkingv1.NetworkPolicy{
			netpol("x", "p", sel("pod", "a"), egressRules(peers(podPeer(selp("pod", "b"))))),
		}, []want{
			allow("x/a", "x/b", TCP80), deny("x/a", "y/b", TCP80),
		}},
		{"egress to a namespace", []networkingv1.NetworkPolicy{
			netpol("x", "p", all(), egressRules(peers(nsPeer(selp("ns", "y"))))),
		}, []want{
			allow("x/a", "y/c", TCP80), deny("x/a", "z/c", TCP80), deny("x/a", "x/b", TCP80),
		}},
	})
}

func TestIPBlock(t *testing.T) {
	// y/b is 10.244.2.11; x/b is 10.244.1.11.
	runOracle(t, testModel(), []oracleTest{
		{"host CIDR on a pod IP", target(ipPeer("10.244.2.11/32")), []want{
			allow("y/b", "x/a", TCP80), deny("y/a", "x/a", TCP80),
		}},
		{"except makes a hole", target(ipPeer("10.244.0.0/16", "10.244.2.11/32")), []want{
			allow("y/a", "x/a", TCP80), deny("y/b", "x/a", TCP80), allow("x/b", "x/a", TCP80),
		}},
		{"every except applies", target(ipPeer("10.244.0.0/16", "10.244.2.0/24", "10.244.3.12/32")), []want{
			allow("x/c", "x/a", TCP80), deny("y/c", "x/a", TCP80), deny("z/c", "x/a", TCP80), allow("z/b", "x/a", TCP80),
		}},
		{"an IP in cidr and except is allowed by another peer", target(ipPeer("10.244.0.0/16", "10.244.2.11/32"), ipPeer("10.244.2.11/32")), []want{
			allow("y/b", "x/a", TCP80),
		}},
		{"egress ipBlock on a pod IP", []networkingv1.NetworkPolicy{
			netpol("x", "p", sel("pod", "a"), egressRules(peers(ipPeer("10.244.2.11/32")))),
		}, []want{
			allow("x/a", "y/b", TCP80), deny("x/a", "y/a", TCP80),
		}},
		{"egress except", []networkingv1.NetworkPolicy{
			netpol("x", "p", sel("pod", "a"), egressRules(peers(ipPeer("0.0.0.0/4", "10.244.1.11/32")))),
		}, []want{
			deny("x/a", "x/b", TCP80), allow("x/a", "x/c", TCP80), allow("x/a", "z/c", UDP80),
		}},
		{"IPv4 block does not match IPv6", target(ipPeer("::/0")), []want{
			deny("y/b", "x/a", TCP80),
		}},
	})
}

func TestIPBlockEdges(t *testing.T) {
	m := testModel()
	xa := mustPod(m, "x/a")
	ps := target(ipPeer("192.168.0.0/16", "192.168.9.0/24"))
	for _, tc := range []struct {
		from Peer
		want bool
	}{
		{IPPeer("192.168.1.5"), true},
		{IPPeer("192.168.9.5"), false},
		{IPPeer("172.16.0.1"), false},
		{IPPeer("::ffff:192.168.1.5"), true}, // IPv4-mapped IPv6 is the IPv4 address
		{IPPeer(""), false},
	} {
		if v := Allowed(ps, m, Traffic{From: tc.from, To: PodPeer(xa), Port: 80, Protocol: tcp}); v.Allowed != tc.want {
			t.Errorf("%q -> x/a: %s, want allowed=%v", tc.from.IP, v, tc.want)
		}
	}
	// Selectors never select a bare IP; a bare IP source has no egress.
	v := Allowed(target(nsPeer(&metav1.LabelSelector{})), m, Traffic{From: IPPeer("10.244.2.11"), To: PodPeer(xa), Port: 80, Protocol: tcp})
	if v.Allowed || v.Egress.Pod != "" || !v.Egress.Allowed {
		t.Errorf("bare IP matched a selector: %s", v)
	}
	// A pod whose IP is not known yet matches no ipBlock.
	noIP := mustPod(m, "y/b")
	noIP.IP = ""
	if v := Allowed(target(ipPeer("0.0.0.0/0")), m, PodTraffic(noIP, xa, 80, tcp)); v.Allowed {
		t.Errorf("pod without IP matched an ipBlock: %s", v)
	}
	// IPv6.
	m6, _ := m.WithPodIP("y/b", "fd00:10:244:2::b")
	ps6 := target(ipPeer("fd00:10:244::/48", "fd00:10:244:2::b/128"), ipPeer("fd00:10:244:2::/64"))
	if v := Allowed(ps6, m6, PodTraffic(mustPod(m6, "y/b"), xa, 80, tcp)); !v.Allowed || len(v.Ingress.AllowedBy) != 1 {
		t.Errorf("IPv6: %s", v)
	}
	// Egress to a bare IP: egress judged, no ingress.
	eg := []networkingv1.NetworkPolicy{netpol("x", "p", sel("pod", "a"), egressRules(peers(ipPeer("192.168.0.0/16")).on(portNum(443))))}
	for _, tc := range []struct {
		to   string
		port int32
		want bool
	}{{"192.168.1.1", 443, true}, {"192.168.1.1", 80, false}, {"8.8.8.8", 443, false}} {
		v := Allowed(eg, m, Traffic{From: PodPeer(xa), To: IPPeer(tc.to), Port: tc.port, Protocol: tcp})
		if v.Allowed != tc.want || v.Ingress.Pod != "" {
			t.Errorf("x/a -> %s:%d: %s, want allowed=%v", tc.to, tc.port, v, tc.want)
		}
	}
}

func TestSelectorMatchesAPIMachinery(t *testing.T) {
	sets := []map[string]string{nil, {}, labels("pod", "a"), labels("pod", "b", "team", "red"), labels("team", "")}
	selectors := []metav1.LabelSelector{
		{},
		sel("pod", "a"),
		sel("pod", "b", "team", "red"),
		*expr("pod", metav1.LabelSelectorOpIn, "a", "b"),
		*expr("pod", metav1.LabelSelectorOpNotIn, "a"),
		*expr("team", metav1.LabelSelectorOpExists),
		*expr("team", metav1.LabelSelectorOpDoesNotExist),
		*expr("team", metav1.LabelSelectorOpIn, ""),
		{MatchLabels: labels("pod", "b"), MatchExpressions: expr("team", metav1.LabelSelectorOpNotIn, "blue").MatchExpressions},
	}
	for i, s := range selectors {
		ref, err := metav1.LabelSelectorAsSelector(&s)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range sets {
			if got, want := selects(&s, l), ref.Matches(k8slabels.Set(l)); got != want {
				t.Errorf("selector %d %v on %v: got %v, apimachinery says %v", i, s, l, got, want)
			}
		}
	}
	if selects(nil, nil) {
		t.Error("a null selector matched")
	}
}
