package agent

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/cnilab/cnilab/datapath/flows"

	"github.com/cnilab/cnilab/datapath/loader"
)

// EndpointEntry is what the datapath needs to deliver to a local pod.
type EndpointEntry struct {
	Ifindex int              // host-side veth
	PodMAC  net.HardwareAddr // the pod interface
	HostMAC net.HardwareAddr // the host-side veth
	// PolicyIngress and PolicyEgress say whether some NetworkPolicy selects
	// the pod for that direction (enforced: only allowed peers pass).
	PolicyIngress, PolicyEgress bool
}

// Datapath is the part of the eBPF datapath the agent drives. The real one is
// datapath/loader; tests use a fake.
type Datapath interface {
	AttachMode() string
	Features() map[string]any
	AttachEndpoint(ifindex int) error
	DetachEndpoint(ifindex int) error
	AttachOverlay(ifindex int) error
	AttachNetdev(ifindex int) error
	UpsertEndpoint(ip netip.Addr, e EndpointEntry) error
	// EndpointEntries lists the endpoint map as the kernel holds it (it
	// outlives the agent).
	EndpointEntries() (map[netip.Addr]EndpointEntry, error)
	DeleteEndpoint(ip netip.Addr) error
	// PruneVethOwners removes veth-owner entries no endpoint accounts for
	// and describes each ("ifindex 7 → 10.244.0.3").
	PruneVethOwners() ([]string, error)
	UpsertRemote(p netip.Prefix, nodeIP netip.Addr) error
	DeleteRemote(p netip.Prefix) error
	UpsertIdentity(p netip.Prefix, identity uint32) error
	DeleteIdentity(p netip.Prefix) error
	AddPolicyKey(ep netip.Addr, identity uint32, port uint16, proto uint8, egress bool) error
	RemovePolicyKey(ep netip.Addr, identity uint32, port uint16, proto uint8, egress bool) error
	GCConntrack(now time.Time) (deleted int, err error)
	// ReadEvents delivers flow events until ctx ends.
	ReadEvents(ctx context.Context, fn func(flows.Event)) error
	// Counters and LostEvents feed the Prometheus metrics.
	Counters() ([]flows.Counter, error)
	LostEvents() (uint64, error)
	// MapEntries counts the entries of the state maps by name (see
	// loader.Datapath.MapEntries).
	MapEntries() (map[string]int, error)
	// Conntrack lists the tracked connections.
	Conntrack() ([]loader.ConntrackEntry, error)
	Close() error
}
