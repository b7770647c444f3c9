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
	"time"

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
		if uerr := a.uninstall(dp, r); uerr != nil {
			a.log.Warn("undo endpoint", "container", r.ContainerID, "err", uerr)
		}
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
	a.removeRecord(old.ContainerID)
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

// uninstall removes the endpoint's map entry and programs; only a failed
// map delete is an error (the veth may be gone already).
func (a *Agent) uninstall(dp Datapath, r *endpointRecord) error {
	if err := dp.DeleteEndpoint(r.ip); err != nil {
		return fmt.Errorf("endpoint %s: %w", r.ContainerID, err)
	}
	if err := dp.DetachEndpoint(r.HostIfIndex); err != nil {
		a.log.Debug("detach endpoint", "ifindex", r.HostIfIndex, "err", err)
	}
	return nil
}

// beginEndpointWrite admits an endpoint add or delete, unless the agent is
// stopping; done ends it. Run closes the datapath only after every admitted
// write has ended, so none is cut between two maps.
func (a *Agent) beginEndpointWrite() (done func(), ok bool) {
	a.endpointWrites.RLock()
	if a.endpointWritesClosed {
		a.endpointWrites.RUnlock()
		return nil, false
	}
	return a.endpointWrites.RUnlock, true
}

// closeEndpointWrites waits for the admitted endpoint writes and turns
// later ones away.
func (a *Agent) closeEndpointWrites() {
	a.endpointWrites.Lock()
	a.endpointWritesClosed = true
	a.endpointWrites.Unlock()
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
		// No other endpoint holds its address: a newer holder would have
		// superseded it (takeAddress, readRecords).
		if err := a.uninstall(dp, r); err != nil {
			// Kept, record and all, for the retried DEL.
			a.mu.Lock()
			if _, taken := a.endpoints[containerID]; !taken {
				a.endpoints[containerID] = r
			}
			a.mu.Unlock()
			return err
		}
	}
	if err := os.Remove(filepath.Join(a.recordDir(), containerID+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove endpoint record: %w", err)
	}
	a.log.Info("endpoint removed", "pod", r.PodNamespace+"/"+r.PodName, "ip", r.ip)
	return nil
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
	// The enforcement flags are not in the records: the policy engine set
	// them in the pinned endpoint map, which outlived the last agent, and
	// its restored state says they are applied. Rewriting an entry without
	// them would open every isolated pod until its policy next changes.
	inKernel, err := a.dp.EndpointEntries()
	if err != nil {
		return fmt.Errorf("agent: read the endpoint map: %w", err)
	}
	live, gone, err := a.readRecords()
	if err != nil {
		return err
	}
	for _, r := range gone {
		a.log.Info("forgetting endpoint whose interface is gone", "container", r.ContainerID)
		// Its map entry goes, unless a live endpoint has its address now.
		if !slices.ContainsFunc(live, func(l *endpointRecord) bool { return l.ip == r.ip }) {
			if err := a.dp.DeleteEndpoint(r.ip); err != nil {
				a.log.Warn("forget endpoint: record kept for the next start", "container", r.ContainerID, "err", err)
				continue
			}
		}
		a.removeRecord(r.ContainerID)
	}
	for _, r := range live {
		if cur, ok := inKernel[r.ip]; ok {
			r.policyIngress, r.policyEgress = cur.PolicyIngress, cur.PolicyEgress
		}
		if err := a.install(a.dp, r); err != nil {
			return fmt.Errorf("agent: restore %w", err)
		}
		// The status publisher and the socket's readers run meanwhile.
		a.mu.Lock()
		a.endpoints[r.ContainerID] = r
		a.mu.Unlock()
	}
	a.mu.Lock()
	n := len(a.endpoints)
	a.mu.Unlock()
	a.log.Info("restored endpoints", "count", n)
	a.pruneVethOwners(a.dp)
	return nil
}

// readRecords reads the endpoint records: live ones (their veth exists),
// one per address, and gone ones. Of two live records with one address the
// newer wins (an agent stopped between saving it and forgetting the one it
// superseded leaves both); the older is forgotten here. Unreadable records
// are removed.
func (a *Agent) readRecords() (live, gone []*endpointRecord, err error) {
	entries, err := os.ReadDir(a.recordDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("agent: read endpoint records: %w", err)
	}
	type dated struct {
		r     *endpointRecord
		saved time.Time
	}
	newest := map[netip.Addr]dated{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(a.recordDir(), e.Name())
		b, rerr := os.ReadFile(p)
		info, serr := e.Info()
		if rerr != nil || serr != nil {
			continue
		}
		var ep api.Endpoint
		if json.Unmarshal(b, &ep) != nil || ep.ContainerID+".json" != e.Name() {
			_ = os.Remove(p)
			continue
		}
		r, perr := a.parseEndpoint(ep)
		switch {
		case perr != nil:
			a.log.Info("forgetting endpoint record that does not fit this node", "container", ep.ContainerID, "err", perr)
			_ = os.Remove(p)
		case !linkMatches(r):
			gone = append(gone, r)
		default:
			d := dated{r, info.ModTime()}
			old, dup := newest[r.ip]
			if dup && !d.saved.After(old.saved) {
				d, old = old, d
			}
			if dup {
				a.forgetSuperseded(a.dp, old.r, d.r)
			}
			newest[r.ip] = d
		}
	}
	for _, d := range newest {
		live = append(live, d.r)
	}
	return live, gone, nil
}

func (a *Agent) removeRecord(containerID string) {
	if err := os.Remove(filepath.Join(a.recordDir(), containerID+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("remove endpoint record", "container", containerID, "err", err)
	}
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
