// Package policy compiles Kubernetes networking.k8s.io/v1 NetworkPolicies
// into the identity-based state the cnilab datapath enforces, after Cilium:
//
//   - every distinct label set (a pod's namespace, the namespace's labels,
//     the pod's labels, and the policy CIDRs that contain the pod's IP) gets
//     a numeric identity (see Allocator);
//   - an ipcache maps IP prefixes to identities, resolved by longest prefix
//     (pods, nodes, and every ipBlock cidr and except of every policy);
//   - each local endpoint (a pod on this node) has an "ingress enforced" and
//     an "egress enforced" flag and a set of allow entries PolicyKey
//     (identity, port, protocol, direction), looked up by the datapath in
//     the order documented on PolicyKey.
//
// Everything here is a pure function of its inputs (State, Local and the
// Allocator's memory): no datapath is needed to test it, and Simulate
// evaluates a Result exactly the way the datapath does.
//
// The agent calls Compile on every change of Pods, Namespaces, Nodes or
// NetworkPolicies, then Diff against the previous Result, and applies the
// Delta with Delta.Apply, which orders the writes so that no connection
// allowed both before and after the change is ever denied in between.
//
// Semantic choices, in short (details on the functions):
//
//   - Traffic from the endpoint's own node (identity IdentityHost) is always
//     allowed in: "Traffic is allowed to a pod if [...] the traffic source is
//     the pod's local node" (spec.ingress). Compile writes an explicit
//     (IdentityHost, any port, any protocol) ingress entry for it.
//   - ipBlock is matched against every address, pod IPs included, like the
//     e2e oracle and most CNIs.
//   - A named egress port is resolved per peer identity: the union of the
//     port numbers of the pods that share that identity (see Compile).
//   - An invalid policy is reported (PolicyError) and compiled fail-closed:
//     the pods it would select are isolated for its policy types, and it
//     allows nothing.
//
// The datapath never sees identities of other nodes: identities are
// node-local numbers, every agent allocates its own, and they must not be
// carried on the wire.
package policy
