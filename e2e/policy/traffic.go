package policy

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// ProtocolICMP is the protocol of ping probes. NetworkPolicy cannot name it
// (ports only carry TCP, UDP and SCTP), see Allowed for how it is judged.
const ProtocolICMP corev1.Protocol = "ICMP"

// Peer is one end of a connection: a pod of the model, or an address that
// belongs to no pod (a node, something outside the cluster).
type Peer struct {
	// Pod is the pod at this end, nil for a bare IP.
	Pod *Pod
	// IP is the address the traffic carries: the pod's IP for a pod (empty
	// while unknown, in which case no ipBlock matches it).
	IP string
}

// PodPeer returns the peer for pod p.
func PodPeer(p Pod) Peer { return Peer{Pod: &p, IP: p.IP} }

// IPPeer returns the peer for an address that is not a pod's.
func IPPeer(ip string) Peer { return Peer{IP: ip} }

func (p Peer) String() string {
	if p.Pod != nil {
		return p.Pod.Key()
	}
	return p.IP
}

// Traffic is one connection attempt: From opens a connection to To on Port
// with Protocol (TCP, UDP, SCTP or ICMP; Port is ignored for ICMP).
type Traffic struct {
	From     Peer
	To       Peer
	Port     int32
	Protocol corev1.Protocol
}

// PodTraffic returns the traffic from pod from to pod to.
func PodTraffic(from, to Pod, port int32, proto corev1.Protocol) Traffic {
	return Traffic{From: PodPeer(from), To: PodPeer(to), Port: port, Protocol: proto}
}

func (t Traffic) String() string {
	return fmt.Sprintf("%s -> %s %s", t.From, t.To, PortProtocol{Port: t.Port, Protocol: t.Protocol})
}

// RuleRef names one rule of one policy: "x/allow-80 ingress[0]".
type RuleRef struct {
	// Policy is "namespace/name".
	Policy string
	// Index is the rule's index in spec.ingress or spec.egress.
	Index int
}

// DirectionVerdict is the judgement of one direction: the egress of the
// source or the ingress of the destination.
type DirectionVerdict struct {
	// Pod is the pod whose policies were judged; empty when that end is not
	// a pod, in which case no policy applies and the direction allows.
	Pod string
	// Isolated says whether some policy selects Pod for this direction.
	Isolated bool
	// Isolating lists the policies ("namespace/name") that select Pod for
	// this direction.
	Isolating []string
	// AllowedBy lists every rule of those policies that allows the traffic.
	AllowedBy []RuleRef
	// Allowed is !Isolated || len(AllowedBy) > 0.
	Allowed bool
}

// Verdict is the oracle's answer for one Traffic.
type Verdict struct {
	// Allowed is Egress.Allowed && Ingress.Allowed, or true for Loopback.
	Allowed bool
	// Loopback is traffic from a pod to itself: it never leaves the pod's
	// network namespace, so no policy can apply to it.
	Loopback bool
	// Egress is the judgement of the source's egress.
	Egress DirectionVerdict
	// Ingress is the judgement of the destination's ingress.
	Ingress DirectionVerdict
}

func (r RuleRef) string(dir string) string {
	return fmt.Sprintf("%s %s[%d]", r.Policy, dir, r.Index)
}

func (d DirectionVerdict) explain(dir string) string {
	switch {
	case d.Pod == "":
		return dir + ": not a pod, no policy applies"
	case !d.Isolated:
		return fmt.Sprintf("%s of %s: not isolated", dir, d.Pod)
	case d.Allowed:
		return fmt.Sprintf("%s of %s: isolated by %v, allowed by %s", dir, d.Pod, d.Isolating, d.AllowedBy[0].string(dir))
	default:
		return fmt.Sprintf("%s of %s: isolated by %v, no rule allows", dir, d.Pod, d.Isolating)
	}
}

// String explains the verdict in one line.
func (v Verdict) String() string {
	word := "denied"
	if v.Allowed {
		word = "allowed"
	}
	if v.Loopback {
		return "allowed (loopback: a pod's traffic to itself never leaves it)"
	}
	return fmt.Sprintf("%s (%s; %s)", word, v.Egress.explain("egress"), v.Ingress.explain("ingress"))
}
