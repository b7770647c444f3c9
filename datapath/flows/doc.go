// Package flows turns the datapath's flow events into Hubble-style flows,
// keeps them, serves them, and exposes the datapath counters as
// Prometheus metrics.
//
//   - Enricher.Enrich turns an Event (as the loader decodes it from the
//     BPF ring buffer) into a Flow, resolving both addresses through the
//     agent's Endpoints; reserved identities get Hubble's reserved:
//     labels.
//   - Flow is shaped as Hubble's flow JSON (see Flow for every field and
//     the Hubble field it mirrors).
//   - Store is a bounded ring of flows (DefaultCapacity) with Query and
//     Follow; followers too slow to read lose flows rather than block
//     Add.
//   - Handler serves GET /v1/flows (ParseFilter's parameters, follow=true)
//     as JSON lines.
//   - Collector, NewGauges and MetricsHandler are the cnilab_* metrics.
//
// The package does not depend on the loader: the loader (or the agent)
// converts its records to Event and its counters to Counter.
package flows
