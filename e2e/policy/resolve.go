package policy

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"

	networkingv1 "k8s.io/api/networking/v1"
)

// Pod IPs are only known at run time, so cases write ipBlock CIDRs as
// templates that name a pod:
//
//	{x/b}      the host CIDR of x/b's IP: 10.244.1.11/32 (or /128 for IPv6)
//	{x/b}/N    x/b's IP masked to N bits: {x/b}/4 is 0.0.0.0/4 for 10.244.1.11
//
// Resolve replaces them with the model's pod IPs. A CIDR that is not a
// template is left as it is.
var cidrTemplate = regexp.MustCompile(`^\{([^{}/]+/[^{}/]+)\}(?:/([0-9]+))?$`)

// IsTemplate reports whether cidr is a pod IP template.
func IsTemplate(cidr string) bool { return cidrTemplate.MatchString(cidr) }

// Resolve returns a copy of np whose ipBlock templates are replaced by CIDRs
// made of the pod IPs in m. It fails when a template names a pod that is
// not in m, or that has no IP yet.
func Resolve(np networkingv1.NetworkPolicy, m Model) (networkingv1.NetworkPolicy, error) {
	out := *np.DeepCopy()
	resolvePeers := func(peers []networkingv1.NetworkPolicyPeer) error {
		for i := range peers {
			b := peers[i].IPBlock
			if b == nil {
				continue
			}
			var err error
			if b.CIDR, err = ResolveCIDR(b.CIDR, m); err != nil {
				return err
			}
			for j := range b.Except {
				if b.Except[j], err = ResolveCIDR(b.Except[j], m); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for i := range out.Spec.Ingress {
		if err := resolvePeers(out.Spec.Ingress[i].From); err != nil {
			return np, fmt.Errorf("policy %s/%s: %w", np.Namespace, np.Name, err)
		}
	}
	for i := range out.Spec.Egress {
		if err := resolvePeers(out.Spec.Egress[i].To); err != nil {
			return np, fmt.Errorf("policy %s/%s: %w", np.Namespace, np.Name, err)
		}
	}
	return out, nil
}

// ResolveCIDR resolves one CIDR template (see Resolve); any other string is
// returned unchanged.
func ResolveCIDR(cidr string, m Model) (string, error) {
	sub := cidrTemplate.FindStringSubmatch(cidr)
	if sub == nil {
		return cidr, nil
	}
	pod, ok := m.Pod(sub[1])
	if !ok {
		return "", fmt.Errorf("CIDR %q: pod %s is not in the model", cidr, sub[1])
	}
	addr, err := netip.ParseAddr(pod.IP)
	if err != nil {
		return "", fmt.Errorf("CIDR %q: pod %s has no usable IP (%q)", cidr, sub[1], pod.IP)
	}
	addr = addr.Unmap()
	bits := addr.BitLen()
	if sub[2] != "" {
		if bits, err = strconv.Atoi(sub[2]); err != nil || bits > addr.BitLen() {
			return "", fmt.Errorf("CIDR %q: prefix length %s is out of range for %s", cidr, sub[2], addr)
		}
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return "", fmt.Errorf("CIDR %q: %w", cidr, err)
	}
	return p.String(), nil
}
