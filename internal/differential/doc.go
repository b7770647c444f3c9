// Package differential holds the differential test of the NetworkPolicy
// implementation: random namespaces, pods, policies and packets; the
// datapath's compiler (datapath/policy) writes the policies into a loaded
// eBPF datapath, BPF_PROG_TEST_RUN runs the packets through it, and every
// verdict must equal the independent oracle's (e2e/policy). This package is
// the only place that imports both; neither imports the other. It has no
// code outside its tests.
package differential
