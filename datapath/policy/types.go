package policy

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Reserved identities. Computed identities are in [MinIdentity, MaxIdentity].
const (
	// IdentityAny in a PolicyKey matches every peer.
	IdentityAny uint32 = 0
	// IdentityHost is this node (all of Local.NodeName's addresses).
	IdentityHost uint32 = 1
	// IdentityWorld is an address with no ipcache entry.
	IdentityWorld uint32 = 2
	// IdentityRemoteNode is another node's address that no policy CIDR
	// contains.
	IdentityRemoteNode uint32 = 3
	// MinIdentity is the first computed identity.
	MinIdentity uint32 = 256
	// MaxIdentity is the last computed identity (24 bits, as in Cilium).
	MaxIdentity uint32 = 1<<24 - 1
)

// IP protocol numbers used in PolicyKey.Proto.
const (
	ProtoAny  uint8 = 0
	ProtoICMP uint8 = 1
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoSCTP uint8 = 132
)

// State is the cluster as the agent's informers see it.
type State struct {
	Namespaces []Namespace
	Pods       []Pod
	Nodes      []Node
	Policies   []networkingv1.NetworkPolicy
}

// Namespace is a namespace and its labels. A pod whose namespace is missing
// from State gets the one label the API server sets on every namespace,
// kubernetes.io/metadata.name=<name>.
type Namespace struct {
	Name   string
	Labels map[string]string
}

// Pod is a pod with its IP (status.podIP; the zero Addr while it has none,
// and such a pod is ignored) and the node it runs on (spec.nodeName).
// Ports are its containers' ports, which named ports resolve against.
//
// A pod whose IP is one of a node's addresses (hostNetwork) is not an
// endpoint and has no identity of its own: its traffic is the node's.
type Pod struct {
	Namespace string
	Name      string
	Labels    map[string]string
	IP        netip.Addr
	Node      string
	Ports     []corev1.ContainerPort
}

// Node is a node and every address it sends from, including any address it
// uses towards its own pods (a gateway on the pod side), so that traffic
// from the node resolves to IdentityHost on its own pods.
type Node struct {
	Name string
	IPs  []netip.Addr
}

// Local says which node is compiled for: its pods are the endpoints and its
// addresses are IdentityHost.
type Local struct {
	NodeName string
}

// PolicyKey is one allow entry of a local endpoint. For a packet of an
// enforced direction, with the peer's identity id (ipcache), the datapath
// looks up, in this order, and allows on the first hit:
//
//	(id, port, proto), (id, 0, proto), (id, 0, 0),
//	(0, port, proto),  (0, 0, proto),  (0, 0, 0)
//
// ICMP has no port: it is looked up with port 0, so only entries with
// Port 0 and Proto 0 (rules without ports) match it.
type PolicyKey struct {
	// Endpoint is the local pod's IP.
	Endpoint netip.Addr
	// Identity is the peer's identity, IdentityAny for every peer.
	Identity uint32
	// Port is the destination port, 0 for every port.
	Port uint16
	// Proto is ProtoTCP, ProtoUDP or ProtoSCTP, ProtoAny for every protocol.
	Proto uint8
	// Egress is true for traffic sent by Endpoint, false for received.
	Egress bool
}

// EndpointPolicy is the datapath state of one local endpoint. Keys of a
// direction are only meaningful when the direction is enforced; a direction
// that is not enforced has none.
type EndpointPolicy struct {
	IngressEnforced bool
	EgressEnforced  bool
	// Keys are sorted (see compareKeys) and free of duplicates.
	Keys []PolicyKey
}

// Result is the datapath state of one node.
type Result struct {
	// IPCache maps prefixes to identities; an address resolves to the
	// identity of the longest prefix that contains it, IdentityWorld when
	// none does. It holds host prefixes of pods and nodes and every ipBlock
	// cidr and except. IPv6 entries appear only when pods, nodes or
	// policies use IPv6; an IPv4-only datapath skips them.
	IPCache map[netip.Prefix]uint32
	// Endpoints holds every local pod, enforced or not.
	Endpoints map[netip.Addr]EndpointPolicy
	// Identities names every identity of IPCache (its key, see Allocator),
	// for flow events and debugging.
	Identities map[uint32]string
}
