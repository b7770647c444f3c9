// Package cases is the catalog of NetworkPolicy cases cnilab's suite runs:
// every behaviour of the upstream Kubernetes NetworkPolicy e2e suite
// (test/e2e/network/netpol), with the upstream expectations written out by
// hand, and Cyclonus-style generated cases over targets × peers × ports ×
// protocols × directions, conflicts and updates.
//
// Cases are plain policy.Case values built with the small constructors in
// builders_*.go, so each reads like the policy it creates:
//
//	create(policy("deny-all-ingress", in("x"), selectAll(), ingressTypes()))
//
// The oracle in package policy decides what every probe expects; the
// hand-written expectations of the upstream cases only cross-check it.
package cases
