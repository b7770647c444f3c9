package policy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestValidateRejects(t *testing.T) {
	endPortOnly := networkingv1.NetworkPolicyPort{EndPort: new(int32(81))}
	namedRange := portName("serve-80-tcp")
	namedRange.EndPort = new(int32(81))
	for _, tc := range []struct {
		name  string
		np    networkingv1.NetworkPolicy
		field string // the field path the error must name
	}{
		{"no name", netpol("x", "", all()), "metadata.name"},
		{"bad name", netpol("x", "Bad_Name", all()), "metadata.name"},
		{"no namespace", netpol("", "p", all()), "metadata.namespace"},
		{"bad CIDR", netpol("x", "p", all(), ingressRules(peers(ipPeer("10.0.0.0/33")))), "spec.ingress[0].from[0].ipBlock.cidr"},
		{"not a CIDR", netpol("x", "p", all(), egressRules(peers(ipPeer("10.0.0.1")))), "spec.egress[0].to[0].ipBlock.cidr"},
		{"host bits set", netpol("x", "p", all(), ingressRules(peers(ipPeer("10.0.0.1/24")))), "spec.ingress[0].from[0].ipBlock.cidr"},
		{"empty CIDR", netpol("x", "p", all(), ingressRules(peers(ipPeer("")))), "spec.ingress[0].from[0].ipBlock.cidr"},
		{"IPv4-mapped CIDR", netpol("x", "p", all(), ingressRules(peers(ipPeer("::ffff:10.0.0.0/104")))), "spec.ingress[0].from[0].ipBlock.cidr"},
		{"except outside cidr", netpol("x", "p", all(), ingressRules(peers(ipPeer("10.0.0.0/16", "10.1.0.0/24")))), "spec.ingress[0].from[0].ipBlock.except[0]"},
		{"except equal to cidr", netpol("x", "p", all(), ingressRules(peers(ipPeer("10.0.0.0/16", "10.0.0.0/16")))), "spec.ingress[0].from[0].ipBlock.except[0]"},
		{"except wider than cidr", netpol("x", "p", all(), egressRules(peers(ipPeer("10.0.0.0/16", "10.0.0.0/8")))), "spec.egress[0].to[0].ipBlock.except[0]"},
		{"except of another family", netpol("x", "p", all(), egressRules(peers(ipPeer("0.0.0.0/0", "::/1")))), "spec.egress[0].to[0].ipBlock.except[0]"},
		{"bad except", netpol("x", "p", all(), egressRules(peers(ipPeer("10.0.0.0/8", "10.0.0.1")))), "spec.egress[0].to[0].ipBlock.except[0]"},
		{"endPort without port", netpol("x", "p", all(), ingressRules(anyRule().on(endPortOnly))), "spec.ingress[0].ports[0].endPort"},
		{"endPort with named port", netpol("x", "p", all(), ingressRules(anyRule().on(namedRange))), "spec.ingress[0].ports[0].endPort"},
		{"endPort below port", netpol("x", "p", all(), egressRules(anyRule().on(portRange(81, 80, tcp)))), "spec.egress[0].ports[0].endPort"},
		{"endPort out of range", netpol("x", "p", all(), egressRules(anyRule().on(portRange(81, 70000, tcp)))), "spec.egress[0].ports[0].endPort"},
		{"port zero", netpol("x", "p", all(), ingressRules(anyRule().on(portNum(0)))), "spec.ingress[0].ports[0].port"},
		{"port out of range", netpol("x", "p", all(), ingressRules(anyRule().on(portNum(65536)))), "spec.ingress[0].ports[0].port"},
		{"bad port name", netpol("x", "p", all(), ingressRules(anyRule().on(portName("Not A Name")))), "spec.ingress[0].ports[0].port"},
		{"unknown protocol", netpol("x", "p", all(), ingressRules(anyRule().on(protoOnly("ICMP")))), "spec.ingress[0].ports[0].protocol"},
		{"lower-case protocol", netpol("x", "p", all(), ingressRules(anyRule().on(portNum(80, "tcp")))), "spec.ingress[0].ports[0].protocol"},
		{"invalid operator", netpol("x", "p", *expr("pod", "Equals", "a")), "spec.podSelector.matchExpressions[0].operator"},
		{"In without values", netpol("x", "p", all(), ingressRules(peers(podPeer(expr("pod", metav1.LabelSelectorOpIn))))), "spec.ingress[0].from[0].podSelector.matchExpressions[0].values"},
		{"Exists with values", netpol("x", "p", all(), ingressRules(peers(nsPeer(expr("ns", metav1.LabelSelectorOpExists, "x"))))), "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values"},
		{"bad label key", netpol("x", "p", sel("bad key", "a")), "spec.podSelector.matchLabels"},
		{"bad label value", netpol("x", "p", sel("pod", "not valid!")), "spec.podSelector.matchLabels[pod]"},
		{"empty peer", netpol("x", "p", all(), ingressRules(peers(networkingv1.NetworkPolicyPeer{}))), "spec.ingress[0].from[0]"},
		{"ipBlock with selector", netpol("x", "p", all(), egressRules(peers(networkingv1.NetworkPolicyPeer{
			IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}, PodSelector: &metav1.LabelSelector{},
		}))), "spec.egress[0].to[0]"},
		{"unknown policy type", netpol("x", "p", all(), types("Both")), "spec.policyTypes[0]"},
		{"three policy types", netpol("x", "p", all(), types(ing, egr, ing)), "spec.policyTypes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.np)
			if err == nil {
				t.Fatalf("accepted")
			}
			if !strings.Contains(err.Error(), tc.field+":") {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	stringPort := intstr.FromString("serve-80-tcp")
	for _, np := range []networkingv1.NetworkPolicy{
		netpol("x", "deny-all", all()),
		netpol("x", "p", all(), types(ing, egr), ingressRules(anyRule()), egressRules(anyRule())),
		netpol("x", "p", sel("pod", "a"), ingressRules(peers(nsPodPeer(selp("ns", "y"), expr("pod", metav1.LabelSelectorOpNotIn, "b"))).on(portNum(80), portRange(81, 90, udp), protoOnly(sctp), networkingv1.NetworkPolicyPort{Port: &stringPort}))),
		netpol("x", "p", all(), egressRules(peers(ipPeer("10.0.0.0/8", "10.1.0.0/16", "10.2.3.4/32"), ipPeer("fd00::/8", "fd00::1/128")))),
		netpol("x", "p", *expr("pod", metav1.LabelSelectorOpDoesNotExist), ingressRules(peers(podPeer(expr("team", metav1.LabelSelectorOpIn, ""))).on(protoOnly(corev1.ProtocolTCP)))),
	} {
		if err := Validate(np); err != nil {
			t.Errorf("%s: %v", np.Name, err)
		}
	}
}
