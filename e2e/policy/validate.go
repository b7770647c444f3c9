package policy

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validate checks np the way the API server does (and a little stricter:
// CIDRs must be canonical) and returns an error naming every invalid field,
// or nil. The suite refuses an invalid case rather than evaluate it.
func Validate(np networkingv1.NetworkPolicy) error {
	var errs field.ErrorList
	meta := field.NewPath("metadata")
	if np.Name == "" {
		errs = append(errs, field.Required(meta.Child("name"), ""))
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(np.Name) {
			errs = append(errs, field.Invalid(meta.Child("name"), np.Name, msg))
		}
	}
	if np.Namespace == "" {
		errs = append(errs, field.Required(meta.Child("namespace"), "a policy lives in a namespace"))
	}
	spec := field.NewPath("spec")
	errs = append(errs, validateSelector(&np.Spec.PodSelector, spec.Child("podSelector"))...)
	for i, r := range np.Spec.Ingress {
		path := spec.Child("ingress").Index(i)
		errs = append(errs, validatePorts(r.Ports, path.Child("ports"))...)
		errs = append(errs, validatePeers(r.From, path.Child("from"))...)
	}
	for i, r := range np.Spec.Egress {
		path := spec.Child("egress").Index(i)
		errs = append(errs, validatePorts(r.Ports, path.Child("ports"))...)
		errs = append(errs, validatePeers(r.To, path.Child("to"))...)
	}
	if len(np.Spec.PolicyTypes) > 2 {
		errs = append(errs, field.Invalid(spec.Child("policyTypes"), np.Spec.PolicyTypes, "may not specify more than two policyTypes"))
	}
	for i, t := range np.Spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			errs = append(errs, field.NotSupported(spec.Child("policyTypes").Index(i), t, []string{"Ingress", "Egress"}))
		}
	}
	return errs.ToAggregate()
}

// validateSelector checks a label selector: valid keys and values, and
// operators In and NotIn with values, Exists and DoesNotExist without.
func validateSelector(sel *metav1.LabelSelector, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for k, v := range sel.MatchLabels {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(path.Child("matchLabels"), k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, field.Invalid(path.Child("matchLabels").Key(k), v, msg))
		}
	}
	for i, r := range sel.MatchExpressions {
		rp := path.Child("matchExpressions").Index(i)
		for _, msg := range validation.IsQualifiedName(r.Key) {
			errs = append(errs, field.Invalid(rp.Child("key"), r.Key, msg))
		}
		switch r.Operator {
		case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn:
			if len(r.Values) == 0 {
				errs = append(errs, field.Required(rp.Child("values"), "must be specified when `operator` is 'In' or 'NotIn'"))
			}
		case metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
			if len(r.Values) > 0 {
				errs = append(errs, field.Forbidden(rp.Child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
			}
		default:
			errs = append(errs, field.NotSupported(rp.Child("operator"), r.Operator, []string{"In", "NotIn", "Exists", "DoesNotExist"}))
		}
		for j, v := range r.Values {
			for _, msg := range validation.IsValidLabelValue(v) {
				errs = append(errs, field.Invalid(rp.Child("values").Index(j), v, msg))
			}
		}
	}
	return errs
}

// validatePorts checks protocol, port and endPort of each NetworkPolicyPort.
func validatePorts(ports []networkingv1.NetworkPolicyPort, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, p := range ports {
		pp := path.Index(i)
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP && *p.Protocol != corev1.ProtocolUDP && *p.Protocol != corev1.ProtocolSCTP {
			errs = append(errs, field.NotSupported(pp.Child("protocol"), *p.Protocol, []string{"TCP", "UDP", "SCTP"}))
		}
		switch {
		case p.Port == nil:
			if p.EndPort != nil {
				errs = append(errs, field.Invalid(pp.Child("endPort"), *p.EndPort, "may not be specified when `port` is not specified"))
			}
		case p.Port.Type == intstr.Int:
			for _, msg := range validation.IsValidPortNum(int(p.Port.IntVal)) {
				errs = append(errs, field.Invalid(pp.Child("port"), p.Port.IntVal, msg))
			}
			if p.EndPort != nil {
				if *p.EndPort < p.Port.IntVal {
					errs = append(errs, field.Invalid(pp.Child("endPort"), *p.EndPort, "must be greater than or equal to `port`"))
				}
				for _, msg := range validation.IsValidPortNum(int(*p.EndPort)) {
					errs = append(errs, field.Invalid(pp.Child("endPort"), *p.EndPort, msg))
				}
			}
		default:
			if p.EndPort != nil {
				errs = append(errs, field.Invalid(pp.Child("endPort"), *p.EndPort, "may not be specified when `port` is non-numeric"))
			}
			for _, msg := range validation.IsValidPortName(p.Port.StrVal) {
				errs = append(errs, field.Invalid(pp.Child("port"), p.Port.StrVal, msg))
			}
		}
	}
	return errs
}

// validatePeers checks that each peer sets a selector or an ipBlock (not
// both) and that each part is valid.
func validatePeers(peers []networkingv1.NetworkPolicyPeer, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, p := range peers {
		pp := path.Index(i)
		n := 0
		if p.PodSelector != nil {
			n++
			errs = append(errs, validateSelector(p.PodSelector, pp.Child("podSelector"))...)
		}
		if p.NamespaceSelector != nil {
			n++
			errs = append(errs, validateSelector(p.NamespaceSelector, pp.Child("namespaceSelector"))...)
		}
		if p.IPBlock != nil {
			n++
			errs = append(errs, validateIPBlock(*p.IPBlock, pp.Child("ipBlock"))...)
		}
		switch {
		case n == 0:
			errs = append(errs, field.Required(pp, "must specify a peer"))
		case n > 1 && p.IPBlock != nil:
			errs = append(errs, field.Forbidden(pp, "may not specify both ipBlock and another peer"))
		}
	}
	return errs
}

// validateIPBlock checks that cidr is a canonical CIDR and every except a
// canonical CIDR strictly inside it.
func validateIPBlock(b networkingv1.IPBlock, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if b.CIDR == "" {
		return append(errs, field.Required(path.Child("cidr"), ""))
	}
	cidr, err := parseCIDR(b.CIDR)
	if err != "" {
		return append(errs, field.Invalid(path.Child("cidr"), b.CIDR, err))
	}
	for i, e := range b.Except {
		ex, err := parseCIDR(e)
		switch {
		case err != "":
			errs = append(errs, field.Invalid(path.Child("except").Index(i), e, err))
		case ex.Addr().Is4() != cidr.Addr().Is4() || !cidr.Contains(ex.Addr()) || ex.Bits() <= cidr.Bits():
			errs = append(errs, field.Invalid(path.Child("except").Index(i), e, "must be a strict subset of `cidr`"))
		}
	}
	return errs
}

// parseCIDR parses a subnet-style CIDR, or says what is wrong with it.
func parseCIDR(s string) (netip.Prefix, string) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return p, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
	case p.Addr().Is4In6():
		return p, "must not have an IPv4-mapped IPv6 address"
	case p.Addr() != p.Masked().Addr():
		return p, "must not have bits set beyond the prefix length"
	}
	return p, ""
}
