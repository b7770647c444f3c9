package policy

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Small builders for hand-written test policies.

type specOpt func(*networkingv1.NetworkPolicySpec)

func netpol(ns, name string, sel metav1.LabelSelector, opts ...specOpt) networkingv1.NetworkPolicy {
	np := networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	np.Spec.PodSelector = sel
	for _, o := range opts {
		o(&np.Spec)
	}
	return np
}

func all() metav1.LabelSelector { return metav1.LabelSelector{} }

func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func sel(kv ...string) metav1.LabelSelector { return metav1.LabelSelector{MatchLabels: labels(kv...)} }

func selp(kv ...string) *metav1.LabelSelector { s := sel(kv...); return &s }

func expr(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func types(ts ...networkingv1.PolicyType) specOpt {
	return func(s *networkingv1.NetworkPolicySpec) { s.PolicyTypes = ts }
}

var (
	ing = networkingv1.PolicyTypeIngress
	egr = networkingv1.PolicyTypeEgress
)

type ruleT struct {
	peers []networkingv1.NetworkPolicyPeer
	ports []networkingv1.NetworkPolicyPort
}

func ingressRules(rs ...ruleT) specOpt {
	return func(s *networkingv1.NetworkPolicySpec) {
		if s.Ingress == nil {
			s.Ingress = []networkingv1.NetworkPolicyIngressRule{}
		}
		for _, r := range rs {
			s.Ingress = append(s.Ingress, networkingv1.NetworkPolicyIngressRule{From: r.peers, Ports: r.ports})
		}
	}
}

func egressRules(rs ...ruleT) specOpt {
	return func(s *networkingv1.NetworkPolicySpec) {
		if s.Egress == nil {
			s.Egress = []networkingv1.NetworkPolicyEgressRule{}
		}
		for _, r := range rs {
			s.Egress = append(s.Egress, networkingv1.NetworkPolicyEgressRule{To: r.peers, Ports: r.ports})
		}
	}
}

func peers(ps ...networkingv1.NetworkPolicyPeer) ruleT { return ruleT{peers: ps} }

func (r ruleT) on(ps ...networkingv1.NetworkPolicyPort) ruleT { r.ports = ps; return r }

func anyRule() ruleT { return ruleT{} }

func podPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: s}
}

func nsPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: s}
}

func nsPodPeer(ns, pod *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: ns, PodSelector: pod}
}

func ipPeer(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

func protoPtr(p corev1.Protocol) *corev1.Protocol { return &p }

func portNum(p int32, proto ...corev1.Protocol) networkingv1.NetworkPolicyPort {
	n := intstr.FromInt32(p)
	out := networkingv1.NetworkPolicyPort{Port: &n}
	if len(proto) > 0 {
		out.Protocol = protoPtr(proto[0])
	}
	return out
}

func portName(name string, proto ...corev1.Protocol) networkingv1.NetworkPolicyPort {
	n := intstr.FromString(name)
	out := networkingv1.NetworkPolicyPort{Port: &n}
	if len(proto) > 0 {
		out.Protocol = protoPtr(proto[0])
	}
	return out
}

func portRange(from, to int32, proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	p := portNum(from, proto)
	p.EndPort = &to
	return p
}

func protoOnly(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: protoPtr(proto)}
}

var (
	tcp  = corev1.ProtocolTCP
	udp  = corev1.ProtocolUDP
	sctp = corev1.ProtocolSCTP
)

// testModel is the standard model with synthetic IPs:
// x/a 10.244.1.10, x/b .11, x/c .12; y/* 10.244.2.*; z/* 10.244.3.*.
func testModel() Model { return NewStandardModel().WithSyntheticIPs() }

func mustPod(m Model, key string) Pod {
	p, ok := m.Pod(key)
	if !ok {
		panic("no pod " + key)
	}
	return p
}
