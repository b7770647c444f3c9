// Package policy is cnilab's independent model of Kubernetes
// networking.k8s.io/v1 NetworkPolicy: the standard model of the upstream e2e
// suite and Cyclonus (namespaces x, y, z; pods a, b, c; ports 80 and 81 on
// TCP, UDP and SCTP), an oracle that says whether a connection is allowed and
// why, truth tables (expected vs observed reachability) with a Cyclonus-style
// printer, and the data types of policy cases (steps of actions followed by
// probes) that the e2e suite executes.
//
// The oracle is made of pure functions over API objects. It shares no code
// with the datapath (this package never imports datapath) so that a user can
// trust it more than any datapath: its comments quote the API fields they
// implement, and its tests are hand-computed.
//
// The case catalog lives in the cases sub-package; users add their own cases
// as YAML or JSON files read by LoadCases.
package policy
