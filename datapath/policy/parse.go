package policy

import (
	"errors"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// MaxPortRange is the largest number of ports one endPort range may span:
// ranges are expanded into one PolicyKey per port and peer, so a wider
// range is reported as invalid instead of filling the policy map.
const MaxPortRange = 4096

// parsed is a NetworkPolicy ready to compile.
type parsed struct {
	ns, name string
	// sel is spec.podSelector; labels.Everything() when it is invalid, so an
	// invalid policy isolates every pod of its namespace (fail-closed).
	sel             labels.Selector
	ingress, egress bool
	// in and eg are nil for an invalid policy: it allows nothing.
	in, eg []rule
}

// rule is one spec.ingress[] or spec.egress[] item.
type rule struct {
	// any is true when from/to is empty or missing: "If this field is empty
	// or missing, this rule matches all sources" (spec.ingress[].from).
	any   bool
	peers []peer
	// ports is empty for "If this field is empty or missing, this rule
	// matches all ports" (spec.ingress[].ports).
	ports []port
}

// peer is one NetworkPolicyPeer: selectors (nil when unset) or an ipBlock.
type peer struct {
	pods, namespaces labels.Selector
	block            *block
}

// block is an IPBlock: cidr minus every except. The indices are their
// positions in compiler.prefixes, set by policyPrefixes.
type block struct {
	cidr        netip.Prefix
	except      []netip.Prefix
	cidrIndex   int
	exceptIndex []int
}

// port is one NetworkPolicyPort: proto with either the range first..last
// (0..0 for every port) or a named port.
type port struct {
	proto       uint8
	first, last uint16
	name        string
}

// path is a field path built on the stack while parsing; it becomes a
// field.Path only when an error is reported.
type path struct {
	parent *path
	name   string
	index  int // -1: not a list item
}

func (p *path) child(name string) path { return path{p, name, -1} }
func (p *path) at(i int) path          { return path{p.parent, p.name, i} }

func (p *path) field() *field.Path {
	if p == nil {
		return nil
	}
	f := p.parent.field()
	if f == nil {
		f = field.NewPath(p.name)
	} else {
		f = f.Child(p.name)
	}
	if p.index >= 0 {
		f = f.Index(p.index)
	}
	return f
}

// PolicyError reports an invalid NetworkPolicy: Compile skips its rules and
// isolates the pods it selects (fail-closed).
type PolicyError struct {
	// Policy is "namespace/name".
	Policy string
	// Errs names every invalid field (spec.ingress[0].from[1].ipBlock.cidr…).
	Errs field.ErrorList
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("networkpolicy %s: %v", e.Policy, e.Errs.ToAggregate())
}

// PolicyErrors returns every *PolicyError in err (an error from Compile),
// so the agent can report each invalid policy on its own.
func PolicyErrors(err error) []*PolicyError {
	var out []*PolicyError
	var walk func(error)
	walk = func(err error) {
		var pe *PolicyError
		switch e := err.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		default:
			if errors.As(err, &pe) {
				out = append(out, pe)
			}
		}
	}
	walk(err)
	return out
}

// parsePolicy validates np the way the API server does (plus MaxPortRange)
// and converts it; on error the result is the fail-closed form.
func parsePolicy(np *networkingv1.NetworkPolicy) (parsed, *PolicyError) {
	var errs field.ErrorList
	spec := &path{name: "spec", index: -1}
	p := parsed{ns: np.Namespace, name: np.Name}
	// spec.podSelector: "An empty selector matches all pods in the policy's
	// namespace."
	sp := spec.child("podSelector")
	p.sel = selector(&np.Spec.PodSelector, &sp, &errs)
	if p.sel == nil {
		p.sel = labels.Everything()
	}
	// spec.policyTypes: "If this field is not specified, it will default
	// based on the existence of ingress or egress rules; policies that
	// contain an egress section are assumed to affect egress, and all
	// policies (whether or not they contain an ingress section) are assumed
	// to affect ingress."
	if len(np.Spec.PolicyTypes) == 0 {
		p.ingress, p.egress = true, len(np.Spec.Egress) > 0
	}
	badType := false
	for i, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			p.ingress = true
		case networkingv1.PolicyTypeEgress:
			p.egress = true
		default:
			errs = append(errs, field.NotSupported(spec.field().Child("policyTypes").Index(i), t, []string{"Ingress", "Egress"}))
			badType = true
		}
	}
	if badType {
		// Fail-closed: an unknown type isolates both directions.
		p.ingress, p.egress = true, true
	}
	in, eg := spec.child("ingress"), spec.child("egress")
	for i, r := range np.Spec.Ingress {
		rp := in.at(i)
		p.in = append(p.in, parseRule(r.From, r.Ports, rp.child("from"), rp.child("ports"), &errs))
	}
	for i, r := range np.Spec.Egress {
		rp := eg.at(i)
		p.eg = append(p.eg, parseRule(r.To, r.Ports, rp.child("to"), rp.child("ports"), &errs))
	}
	if len(errs) == 0 {
		return p, nil
	}
	p.in, p.eg = nil, nil
	return p, &PolicyError{Policy: np.Namespace + "/" + np.Name, Errs: errs}
}

// selector converts a label selector ("matchLabels [...] and
// matchExpressions [...] are ANDed"; operators In, NotIn, Exists and
// DoesNotExist), or records why it is invalid and returns nil.
func selector(s *metav1.LabelSelector, at *path, errs *field.ErrorList) labels.Selector {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		*errs = append(*errs, field.Invalid(at.field(), s.String(), err.Error()))
		return nil
	}
	return sel
}

func parseRule(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, peersPath, portsPath path, errs *field.ErrorList) rule {
	r := rule{any: len(peers) == 0}
	if len(peers) > 0 {
		r.peers = make([]peer, 0, len(peers))
	}
	for i := range peers {
		at := peersPath.at(i)
		r.peers = append(r.peers, parsePeer(&peers[i], &at, errs))
	}
	if len(ports) > 0 {
		r.ports = make([]port, 0, len(ports))
	}
	for i := range ports {
		at := portsPath.at(i)
		r.ports = append(r.ports, parsePort(&ports[i], &at, errs))
	}
	return r
}

// parsePeer implements the NetworkPolicyPeer combinations: "ipBlock [...]
// If this field is set then neither of the other fields can be", and a peer
// must set at least one field.
func parsePeer(np *networkingv1.NetworkPolicyPeer, at *path, errs *field.ErrorList) peer {
	var p peer
	if np.PodSelector != nil {
		sp := at.child("podSelector")
		p.pods = selector(np.PodSelector, &sp, errs)
	}
	if np.NamespaceSelector != nil {
		sp := at.child("namespaceSelector")
		p.namespaces = selector(np.NamespaceSelector, &sp, errs)
	}
	switch {
	case np.IPBlock != nil && (np.PodSelector != nil || np.NamespaceSelector != nil):
		*errs = append(*errs, field.Forbidden(at.field(), "may not specify both ipBlock and another peer"))
	case np.IPBlock != nil:
		bp := at.child("ipBlock")
		p.block = parseBlock(np.IPBlock, &bp, errs)
	case np.PodSelector == nil && np.NamespaceSelector == nil:
		*errs = append(*errs, field.Required(at.field(), "must specify a peer"))
	}
	return p
}

// parseBlock implements IPBlock: "cidr is a string representing the
// IPBlock", "except is a slice of CIDRs that should not be included within
// an IPBlock [...] Except values will be rejected if they are outside the
// cidr range" (and, as the API server checks, must be strictly inside).
// Host bits are ignored, as the API server long allowed them.
func parseBlock(b *networkingv1.IPBlock, at *path, errs *field.ErrorList) *block {
	cp, ep := at.child("cidr"), at.child("except")
	cidr, ok := parseCIDR(b.CIDR, &cp, errs)
	if !ok {
		return nil
	}
	out := &block{cidr: cidr}
	for i, s := range b.Except {
		xp := ep.at(i)
		ex, ok := parseCIDR(s, &xp, errs)
		if !ok {
			continue
		}
		if ex.Addr().Is4() != cidr.Addr().Is4() || ex.Bits() <= cidr.Bits() || !cidr.Contains(ex.Addr()) {
			*errs = append(*errs, field.Invalid(xp.field(), s, "must be a strict subset of `cidr` "+b.CIDR))
			continue
		}
		out.except = append(out.except, ex)
	}
	return out
}

func parseCIDR(s string, at *path, errs *field.ErrorList) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		*errs = append(*errs, field.Invalid(at.field(), s, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
		return p, false
	case p.Addr().Is4In6():
		*errs = append(*errs, field.Invalid(at.field(), s, "must not have an IPv4-mapped IPv6 address"))
		return p, false
	}
	return p.Masked(), true
}

// parsePort implements NetworkPolicyPort. protocol: "The protocol (TCP,
// UDP, or SCTP) which traffic must match. If not specified, this field
// defaults to TCP." port: "This can either be a numerical or named port on
// a pod. If this field is not provided, this matches all port names and
// numbers." endPort: "the range of ports from port to endPort if set,
// inclusive [...] This field cannot be defined if the port field is not
// defined or if the port field is defined as a named (string) port. The
// endPort must be equal or greater than port."
func parsePort(np *networkingv1.NetworkPolicyPort, at *path, errs *field.ErrorList) port {
	child := func(name string) *field.Path { return at.field().Child(name) }
	p := port{proto: ProtoTCP}
	if np.Protocol != nil {
		switch *np.Protocol {
		case corev1.ProtocolTCP:
		case corev1.ProtocolUDP:
			p.proto = ProtoUDP
		case corev1.ProtocolSCTP:
			p.proto = ProtoSCTP
		default:
			*errs = append(*errs, field.NotSupported(child("protocol"), *np.Protocol, []string{"TCP", "UDP", "SCTP"}))
		}
	}
	switch {
	case np.Port == nil:
		if np.EndPort != nil {
			*errs = append(*errs, field.Invalid(child("endPort"), *np.EndPort, "may not be specified when `port` is not specified"))
		}
	case np.Port.Type == intstr.String:
		p.name = np.Port.StrVal
		for _, msg := range validation.IsValidPortName(p.name) {
			*errs = append(*errs, field.Invalid(child("port"), p.name, msg))
		}
		if np.EndPort != nil {
			*errs = append(*errs, field.Invalid(child("endPort"), *np.EndPort, "may not be specified when `port` is non-numeric"))
		}
	default:
		first, last := np.Port.IntVal, np.Port.IntVal
		if np.EndPort != nil {
			last = *np.EndPort
		}
		for _, msg := range validation.IsValidPortNum(int(first)) {
			*errs = append(*errs, field.Invalid(child("port"), first, msg))
		}
		switch {
		case np.EndPort == nil:
		case last < first:
			*errs = append(*errs, field.Invalid(child("endPort"), last, "must be greater than or equal to `port`"))
		case len(validation.IsValidPortNum(int(last))) > 0:
			*errs = append(*errs, field.Invalid(child("endPort"), last, validation.IsValidPortNum(int(last))[0]))
		case first == 1 && last == 65535:
			// Every port there is: the same as naming no port (port 0 is
			// not a port), so it compiles to one any-port key.
			return p
		case last-first+1 > MaxPortRange:
			*errs = append(*errs, field.Invalid(child("endPort"), last,
				fmt.Sprintf("range %d-%d spans %d ports, more than the %d cnilab compiles", first, last, last-first+1, MaxPortRange)))
		}
		if first >= 1 && last <= 65535 && first <= last {
			p.first, p.last = uint16(first), uint16(last)
		}
	}
	return p
}
