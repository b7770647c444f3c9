// Package e2e is cnilab's conformance suite: Ginkgo specs that run against any
// lab cluster (any provider, any CNI), speak Kubernetes through client-go, and
// probe through the provider. `make e2e` runs it once per CNI and writes
// JUnit, Ginkgo JSON and a report.json entry per run.
//
// The specs live in _test.go files; this package's non-test files hold what
// the specs share: the run configuration, workloads, probes and reports.
package e2e
