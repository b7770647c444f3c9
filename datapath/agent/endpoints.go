package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/cnilab/cnilab/datapath/api"
)

// endpointRecord is a registered endpoint with its parsed fields; it is
// stored as the api.Endpoint JSON under StateDir/endpoints.
type endpointRecord struct {
	api.Endpoint
	ip      netip.Addr
	podMAC  net.HardwareAddr
	hostMAC net.HardwareAddr
	// Policy enforcement flags, as the policy engine last set them.
	policyIngress, policyEgress bool
}

func (r *endpointRecord) entry() EndpointEntry {
	return EndpointEntry{Ifindex: r.HostIfIndex, PodMAC: r.podMAC, HostMAC: r.hostMAC,
		PolicyIngress: r.policyIngress, PolicyEgress: r.policyEgress}
}

func (a *Agent) recordDir() string { return filepath.Join(a.cfg.StateDir, "endpoints") }

// parseEndpoint checks an endpoint from the CNI plugin against this node.
func (a *Agent) parseEndpoint(ep api.Endpoint) (*endpointRecord, error) {
	r := &endpointRecord{Endpoint: ep}
	var err error
	if ep.ContainerID == "" || strings.ContainsAny(ep.ContainerID, "/\\ ") {
		return nil, fmt.Errorf("invalid container ID %q", ep.ContainerID)
	}
	if r.ip, err = netip.ParseAddr(ep.IP); err != nil || !r.ip.Is4() {
		return nil, fmt.Errorf("endpoint %s: invalid IPv4 address %q", ep.ContainerID, ep.IP)
	}
	a.mu.Lock()
	cidr := a.podCIDR
	a.mu.Unlock()
	if !cidr.Contains(r.ip) {
		return nil, fmt.Errorf("endpoint %s: %s is outside this node's podCIDR %s", ep.ContainerID, r.ip, cidr)
	}
	if r.podMAC, err = net.ParseMAC(ep.PodMAC); err != nil {
		return nil, fmt.Errorf("endpoint %s: pod MAC %q: %w", ep.ContainerID, ep.PodMAC, err)
	}
	if r.hostMAC, err = net.ParseMAC(ep.HostMAC); err != nil {
		return nil, fmt.Errorf("endpoint %s: host MAC %q: %w", ep.ContainerID, ep.HostMAC, err)
	}
	if ep.HostIfIndex <= 0 {
		return nil, fmt.Errorf("endpoint %s: host interface index %d", ep.ContainerID, ep.HostIfIndex)
	}
	return r, nil
}

// linkMatches reports whether the host-side veth is still the one recorded.
func linkMatches(r *endpointRecord) bool {
	l, err := netlink.LinkByIndex(r.HostIfIndex)
	return err == nil && l.Attrs().Name == r.HostIfName
}

// putEndpoint attaches the endpoint's program and writes its map entry, then
// records it; on failure nothing of it stays in the datapath.
func (a *Agent) putEndpoint(ep api.Endpoint) error {
	r, err := a.parseEndpoint(ep)
	if err != nil {
		return err
	}
	if !linkMatches(r) {
		return fmt.Errorf("endpoint %s: host interface %s (index %d) not found on this node", ep.ContainerID, ep.HostIfName, ep.HostIfIndex)
	}
	a.mu.Lock()
	dp := a.dp
	a.mu.Unlock()
	if dp == nil {
		return errors.New("datapath not loaded yet")
	}
	// A pod that policy already covers (its address was known) starts
	// enforced; the sync below settles the rest before the runtime hears back.
	a.mu.Lock()
	if a.policy != nil {
		if ep, ok := a.policy.applied.Endpoints[r.ip]; ok {
			r.policyIngress, r.policyEgress = ep.IngressEnforced, ep.EgressEnforced
		}
	}
	a.mu.Unlock()
	if err := a.install(dp, r); err != nil {
		return err
	}
	if err := a.saveRecord(r); err != nil {
		a.uninstall(dp, r)
		return err
	}
	a.mu.Lock()
	superseded := a.takeAddress(r)
	a.endpoints[ep.ContainerID] = r
	engine := a.policy
	a.mu.Unlock()
	for _, old := range superseded {
		a.forgetSuperseded(dp, old, r)
	}
	if engine != nil {
		if err := engine.sync(); err != nil {
			a.log.Warn("policy for new endpoint", "ip", r.ip, "err", err)
		}
	}
	a.log.Info("endpoint added", "pod", ep.PodNamespace+"/"+ep.PodName, "ip", r.ip, "if", ep.HostIfName)
	return nil
}

// takeAddress removes from the registry the other endpoints that hold r's
// address, and returns them. IPAM gives an address to one container at a
// time, so such an endpoint outlived its address: its CNI ADD gave up
// waiting for the agent and released it. Kept, it would compete with r for
// the map entry (the policy engine rewrites whichever it finds first).
// The caller holds a.mu.
func (a *Agent) takeAddress(r *endpointRecord) []*endpointRecord {
	var out []*endpointRecord
	for id, other := range a.endpoints {
		if other.ip == r.ip && id != r.ContainerID {
			out = append(out, other)
			delete(a.endpoints, id)
		}
	}
	return out
}

// forgetSuperseded drops an endpoint whose address r took: its programs
// leave its veth if that still exists (r's map entry stays), and its
// record goes.
func (a *Agent) forgetSuperseded(dp Datapath, old, r *endpointRecord) {
	if linkMatches(old) && old.HostIfIndex != r.HostIfIndex {
		if err := dp.DetachEndpoint(old.HostIfIndex); err != nil {
			a.log.Debug("detach superseded endpoint", "ifindex", old.HostIfIndex, "err", err)
		}
	}
	if err := os.Remove(filepath.Join(a.recordDir(), old.ContainerID+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("remove superseded endpoint record", "container", old.ContainerID, "err", err)
	}
	a.log.Warn("endpoint superseded: a new endpoint took its address", "ip", r.ip,
		"old", old.PodNamespace+"/"+old.PodName, "oldContainer", old.ContainerID, "container", r.ContainerID)
}

func (a *Agent) install(dp Datapath, r *endpointRecord) error {
	if err := dp.AttachEndpoint(r.HostIfIndex); err != nil {
		return fmt.Errorf("endpoint %s: %w", r.ContainerID, err)
	}
	if err := dp.UpsertEndpoint(r.ip, r.entry()); err != nil {
		_ = dp.DetachEndpoint(r.HostIfIndex)
		return fmt.Errorf("endpoint %s: %w", r.ContainerID, err)
	}
	return nil
}

func (a *Agent) uninstall(dp Datapath, r *endpointRecord) {
	if err := dp.DeleteEndpoint(r.ip); err != nil {
		a.log.Warn("delete endpoint map entry", "ip", r.ip, "err", err)
	}
	if err := dp.DetachEndpoint(r.HostIfIndex); err != nil {
		a.log.Debug("detach endpoint", "ifindex", r.HostIfIndex, "err", err)
	}
}

// deleteEndpoint removes an endpoint; a missing one is not an error.
func (a *Agent) deleteEndpoint(containerID string) error {
	a.mu.Lock()
	r := a.endpoints[containerID]
	delete(a.endpoints, containerID)
	dp := a.dp
	a.mu.Unlock()
	if r == nil {
		return nil
	}
	defer func() {
		if a.policy != nil {
			a.policy.trigger()
		}
	}()
	if dp != nil {
		// Another endpoint may have taken the address since (IPAM reuse).
		if !a.ipInUse(r.ip) {
			a.uninstall(dp, r)
		} else if linkMatches(r) {
			_ = dp.DetachEndpoint(r.HostIfIndex)
		}
	}
	if err := os.Remove(filepath.Join(a.recordDir(), containerID+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove endpoint record: %w", err)
	}
	a.log.Info("endpoint removed", "pod", r.PodNamespace+"/"+r.PodName, "ip", r.ip)
	return nil
}

func (a *Agent) ipInUse(ip netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.endpoints {
		if r.ip == ip {
			return true
		}
	}
	return false
}

func (a *Agent) saveRecord(r *endpointRecord) error {
	if err := os.MkdirAll(a.recordDir(), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(r.Endpoint)
	if err != nil {
		return err
	}
	p := filepath.Join(a.recordDir(), r.ContainerID+".json")
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("save endpoint record: %w", err)
	}
	return os.Rename(p+".tmp", p)
}

// restoreEndpoints re-takes the endpoints of an earlier run: those whose veth
// still exists are re-attached (atomically replacing the old program) and
// re-written; the others are forgotten.
func (a *Agent) restoreEndpoints() error {
	entries, err := os.ReadDir(a.recordDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent: read endpoint records: %w", err)
	}
	// The enforcement flags are not in the records: the policy engine set
	// them in the pinned endpoint map, which outlived the last agent, and
	// its restored state says they are applied. Rewriting an entry without
	// them would open every isolated pod until its policy next changes.
	inKernel, err := a.dp.EndpointEntries()
	if err != nil {
		return fmt.Errorf("agent: read the endpoint map: %w", err)
	}
	var live []*endpointRecord
	var gone []*endpointRecord
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(a.recordDir(), e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var ep api.Endpoint
		if json.Unmarshal(b, &ep) != nil {
			_ = os.Remove(p)
			continue
		}
		r, err := a.parseEndpoint(ep)
		if err != nil || !linkMatches(r) {
			a.log.Info("forgetting endpoint whose interface is gone", "container", ep.ContainerID)
			if r != nil {
				gone = append(gone, r)
			}
			_ = os.Remove(p)
			continue
		}
		live = append(live, r)
	}
	// A gone endpoint's map entry goes, unless a live one has its address
	// now (the entry is then the live one's).
	for _, r := range gone {
		if !slices.ContainsFunc(live, func(l *endpointRecord) bool { return l.ip == r.ip }) {
			_ = a.dp.DeleteEndpoint(r.ip)
		}
	}
	for _, r := range live {
		ep := r.Endpoint
		if cur, ok := inKernel[r.ip]; ok {
			r.policyIngress, r.policyEgress = cur.PolicyIngress, cur.PolicyEgress
		}
		if err := a.install(a.dp, r); err != nil {
			return fmt.Errorf("agent: restore %w", err)
		}
		// The status publisher and the socket's readers run meanwhile.
		a.mu.Lock()
		a.endpoints[ep.ContainerID] = r
		a.mu.Unlock()
	}
	a.mu.Lock()
	n := len(a.endpoints)
	a.mu.Unlock()
	a.log.Info("restored endpoints", "count", n)
	a.pruneVethOwners(a.dp)
	return nil
}

// pruneVethOwners drops veth-owner entries that no endpoint accounts for,
// saying which: each is state some path failed to remove.
func (a *Agent) pruneVethOwners(dp Datapath) {
	pruned, err := dp.PruneVethOwners()
	if err != nil {
		a.log.Warn("prune veth owners", "err", err)
	}
	if len(pruned) > 0 {
		a.log.Warn("removed veth-owner entries no endpoint accounts for", "count", len(pruned), "entries", pruned)
	}
}
