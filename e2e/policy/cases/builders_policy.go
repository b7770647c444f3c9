package cases

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	pol "github.com/cnilab/cnilab/e2e/policy"
)

// opt changes a policy under construction.
type opt func(*networkingv1.NetworkPolicy)

// policy returns a policy named name in namespace x selecting every pod,
// with no policyTypes and no rules, changed by opts in order.
func policy(name string, opts ...opt) networkingv1.NetworkPolicy {
	np := networkingv1.NetworkPolicy{}
	np.Name, np.Namespace = name, "x"
	for _, o := range opts {
		o(&np)
	}
	return np
}

// in puts the policy in namespace ns.
func in(ns string) opt { return func(np *networkingv1.NetworkPolicy) { np.Namespace = ns } }

// selectAll sets spec.podSelector to {} (every pod of the namespace).
func selectAll() opt { return selectBy(metav1.LabelSelector{}) }

// selectPod sets spec.podSelector to pod=<name>.
func selectPod(name string) opt { return selectBy(*podLabel(name)) }

// selectLabels sets spec.podSelector.matchLabels to the key/value pairs kv.
func selectLabels(kv ...string) opt { return selectBy(metav1.LabelSelector{MatchLabels: pairs(kv)}) }

// selectExpr sets spec.podSelector.matchExpressions.
func selectExpr(reqs ...metav1.LabelSelectorRequirement) opt {
	return selectBy(metav1.LabelSelector{MatchExpressions: reqs})
}

func selectBy(s metav1.LabelSelector) opt {
	return func(np *networkingv1.NetworkPolicy) { np.Spec.PodSelector = s }
}

// addType adds t to spec.policyTypes unless it is there.
func addType(np *networkingv1.NetworkPolicy, t networkingv1.PolicyType) {
	for _, have := range np.Spec.PolicyTypes {
		if have == t {
			return
		}
	}
	np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, t)
}

// ingressTypes adds Ingress to spec.policyTypes.
func ingressTypes() opt {
	return func(np *networkingv1.NetworkPolicy) { addType(np, networkingv1.PolicyTypeIngress) }
}

// egressTypes adds Egress to spec.policyTypes.
func egressTypes() opt {
	return func(np *networkingv1.NetworkPolicy) { addType(np, networkingv1.PolicyTypeEgress) }
}

// defaultTypes clears spec.policyTypes, leaving them to defaulting.
func defaultTypes() opt { return func(np *networkingv1.NetworkPolicy) { np.Spec.PolicyTypes = nil } }

// rule is an ingress or egress rule: peers and ports.
type rule struct {
	peers []networkingv1.NetworkPolicyPeer
	ports []networkingv1.NetworkPolicyPort
}

// ingress appends rules to spec.ingress and adds Ingress to policyTypes,
// as the upstream suite's SetSpecIngressRules does; ingress() with no rule
// denies all ingress.
func ingress(rs ...rule) opt {
	return func(np *networkingv1.NetworkPolicy) {
		addType(np, networkingv1.PolicyTypeIngress)
		if np.Spec.Ingress == nil {
			np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{}
		}
		for _, r := range rs {
			np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: r.peers, Ports: r.ports})
		}
	}
}

// egress appends rules to spec.egress and adds Egress to policyTypes;
// egress() with no rule denies all egress.
func egress(rs ...rule) opt {
	return func(np *networkingv1.NetworkPolicy) {
		addType(np, networkingv1.PolicyTypeEgress)
		if np.Spec.Egress == nil {
			np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{}
		}
		for _, r := range rs {
			np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: r.peers, Ports: r.ports})
		}
	}
}

// allowAll is the rule {}: every peer, every port.
func allowAll() rule { return rule{} }

// peers is a rule allowing these peers (from or to) on every port.
func peers(ps ...networkingv1.NetworkPolicyPeer) rule { return rule{peers: ps} }

// onPorts is a rule allowing every peer on these ports.
func onPorts(ps ...networkingv1.NetworkPolicyPort) rule { return rule{ports: ps} }

// on restricts r to ports.
func (r rule) on(ps ...networkingv1.NetworkPolicyPort) rule { r.ports = ps; return r }

// Peers.

// podSel selects pods labelled pod=<name> in the policy's namespace.
func podSel(name string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: podLabel(name)}
}

// podLabels selects pods with these labels in the policy's namespace.
func podLabels(kv ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: pairs(kv)}}
}

// podExpr selects pods by expressions in the policy's namespace.
func podExpr(reqs ...metav1.LabelSelectorRequirement) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchExpressions: reqs}}
}

// anyPodHere is podSelector {}: every pod of the policy's namespace.
func anyPodHere() networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{}}
}

// nsSel selects every pod of namespaces labelled ns=<name>.
func nsSel(name string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: nsLabel(name)}
}

// nsNameSel selects every pod of the namespace by its immutable
// kubernetes.io/metadata.name label, as the upstream suite does.
func nsNameSel(name string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: pairs([]string{pol.NamespaceNameLabel, name})}}
}

// nsLabels selects every pod of namespaces with these labels.
func nsLabels(kv ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: pairs(kv)}}
}

// nsExpr selects every pod of namespaces matching expressions.
func nsExpr(reqs ...metav1.LabelSelectorRequirement) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: reqs}}
}

// anyNamespace is namespaceSelector {}: every pod of every namespace.
func anyNamespace() networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{}}
}

// both ANDs the namespace selector of ns with the pod selector of pod in
// one peer.
func both(ns, pod networkingv1.NetworkPolicyPeer) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: ns.NamespaceSelector, PodSelector: pod.PodSelector}
}

// cidr is an ipBlock peer; cidr and except may be pod IP templates
// ("{y/b}", "{y/b}/4").
func cidr(c string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: c, Except: except}}
}

// Selector requirements.

func isIn(key string, values ...string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: key, Operator: metav1.LabelSelectorOpIn, Values: values}
}

func notIn(key string, values ...string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: key, Operator: metav1.LabelSelectorOpNotIn, Values: values}
}

func exists(key string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: key, Operator: metav1.LabelSelectorOpExists}
}

func notExists(key string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: key, Operator: metav1.LabelSelectorOpDoesNotExist}
}

// Ports.

func numbered(p int32, proto ...corev1.Protocol) networkingv1.NetworkPolicyPort {
	n := intstr.FromInt32(p)
	return withProto(networkingv1.NetworkPolicyPort{Port: &n}, proto)
}

func tcp(p int32) networkingv1.NetworkPolicyPort  { return numbered(p, corev1.ProtocolTCP) }
func udp(p int32) networkingv1.NetworkPolicyPort  { return numbered(p, corev1.ProtocolUDP) }
func sctp(p int32) networkingv1.NetworkPolicyPort { return numbered(p, corev1.ProtocolSCTP) }

// port is a numbered port with no protocol (so TCP by default).
func port(p int32) networkingv1.NetworkPolicyPort { return numbered(p) }

// named is a named port, with proto if given (else TCP by default).
func named(name string, proto ...corev1.Protocol) networkingv1.NetworkPolicyPort {
	n := intstr.FromString(name)
	return withProto(networkingv1.NetworkPolicyPort{Port: &n}, proto)
}

// protocol is every port of proto.
func protocol(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return withProto(networkingv1.NetworkPolicyPort{}, []corev1.Protocol{proto})
}

// portRange is port..endPort on proto.
func portRange(from, to int32, proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	p := numbered(from, proto)
	p.EndPort = &to
	return p
}

func withProto(p networkingv1.NetworkPolicyPort, proto []corev1.Protocol) networkingv1.NetworkPolicyPort {
	if len(proto) > 0 {
		pr := proto[0]
		p.Protocol = &pr
	}
	return p
}

// Helpers.

func podLabel(name string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{pol.PodLabel: name}}
}

func nsLabel(name string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{pol.NamespaceLabel: name}}
}

// pairs turns "k1", "v1", "k2", "v2" into a map.
func pairs(kv []string) map[string]string {
	if len(kv)%2 != 0 {
		panic("odd number of label strings")
	}
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}
