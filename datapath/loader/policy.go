package loader

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"
)

// Policy state lives in two pinned maps the agent writes:
//
//   - cnilab_ipcache, an LPM trie from IPv4 prefixes to identities
//     (UpsertIdentity): the programs resolve a peer address to the identity
//     of its longest prefix, IdentityWorld without one;
//   - cnilab_policy, the allow entries of every local endpoint (SetPolicy),
//     consulted for new connections in the directions the endpoint's
//     EndpointInfo enforces.
//
// Connections are tracked (see GCConntrack): only the first packet of a
// connection is checked, and changing policy does not affect connections
// already tracked. They keep flowing until they are idle for their timeout
// (or ConntrackFlush), as in Cilium.

// UpsertIdentity maps the addresses in prefix to identity (not IdentityAny).
func (d *Datapath) UpsertIdentity(prefix netip.Prefix, identity uint32) error {
	bits, addr, err := lpmKey(prefix)
	if err != nil {
		return fmt.Errorf("upsert identity: %w", err)
	}
	if identity == IdentityAny {
		return fmt.Errorf("upsert identity %v: identity 0 is the policy wildcard", prefix)
	}
	key := datapathIpcacheKey{Prefixlen: bits, Addr: addr}
	if err := d.objs.CnilabIpcache.Put(key, datapathIpcacheInfo{Identity: identity}); err != nil {
		return fmt.Errorf("upsert identity %v: %w", prefix, err)
	}
	return nil
}

// DeleteIdentity removes a prefix from the ipcache; an absent one is not an
// error.
func (d *Datapath) DeleteIdentity(prefix netip.Prefix) error {
	bits, addr, err := lpmKey(prefix)
	if err != nil {
		return fmt.Errorf("delete identity: %w", err)
	}
	key := datapathIpcacheKey{Prefixlen: bits, Addr: addr}
	if err := d.objs.CnilabIpcache.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete identity %v: %w", prefix, err)
	}
	return nil
}

// Identities lists the ipcache.
func (d *Datapath) Identities() (map[netip.Prefix]uint32, error) {
	out := make(map[netip.Prefix]uint32)
	var key datapathIpcacheKey
	var val datapathIpcacheInfo
	it := d.objs.CnilabIpcache.Iterate()
	for it.Next(&key, &val) {
		out[netip.PrefixFrom(addrOf(key.Addr), int(key.Prefixlen))] = val.Identity
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list identities: %w", err)
	}
	return out, nil
}

// Directions of policy_key.
const (
	policyIngress = 0
	policyEgress  = 1
)

// be16 is a port as the programs hold it: network byte order in memory.
func be16(p uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return binary.NativeEndian.Uint16(b[:])
}

func policyKey(ep [4]byte, k PolicyKey) (datapathPolicyKey, error) {
	if k.Endpoint.IsValid() && k.Endpoint.Unmap() != netip.AddrFrom4(ep) {
		return datapathPolicyKey{}, fmt.Errorf("entry %v is for another endpoint", k)
	}
	if k.Port != 0 && k.Proto != ProtoTCP && k.Proto != ProtoUDP && k.Proto != ProtoSCTP {
		return datapathPolicyKey{}, fmt.Errorf("entry %v: a port needs TCP, UDP or SCTP", k)
	}
	dir := uint8(policyIngress)
	if k.Egress {
		dir = policyEgress
	}
	return datapathPolicyKey{Endpoint: be32(ep), Identity: k.Identity, Dport: be16(k.Port), Proto: k.Proto, Direction: dir}, nil
}

func (k datapathPolicyKey) api() PolicyKey {
	return PolicyKey{
		Endpoint: addrOf(k.Endpoint),
		Identity: k.Identity,
		Port:     be16(k.Dport), // the swap is its own inverse
		Proto:    k.Proto,
		Egress:   k.Direction == policyEgress,
	}
}

// policySet is the entries of one endpoint.
type policySet map[datapathPolicyKey]struct{}

// loadPolicies reads every endpoint's entries from the map into d.policies,
// once; afterwards SetPolicy keeps it current. Callers hold d.polMu.
func (d *Datapath) loadPolicies() error {
	if d.policies != nil {
		return nil
	}
	all := make(map[uint32]policySet)
	var key datapathPolicyKey
	var val datapathPolicyValue
	it := d.objs.CnilabPolicy.Iterate()
	for it.Next(&key, &val) {
		set := all[key.Endpoint]
		if set == nil {
			set = make(policySet)
			all[key.Endpoint] = set
		}
		set[key] = struct{}{}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read policy map: %w", err)
	}
	d.policies = all
	return nil
}

// SetPolicy makes keys the allow entries of a local endpoint, replacing
// the ones it had: it adds the new entries first and then deletes the stale
// ones, so an entry present before and after is never missing in between.
// A key's Endpoint must be endpoint or left zero. Entries only count for the
// directions the endpoint's EndpointInfo enforces.
//
// The Datapath remembers what it wrote: the agent must be the map's only
// writer (a new Load reads the map once).
func (d *Datapath) SetPolicy(endpoint netip.Addr, keys []PolicyKey) error {
	ep, err := ipKey(endpoint)
	if err != nil {
		return fmt.Errorf("set policy: %w", err)
	}
	want := make(policySet, len(keys))
	for _, k := range keys {
		pk, err := policyKey(ep, k)
		if err != nil {
			return fmt.Errorf("set policy %v: %w", endpoint, err)
		}
		want[pk] = struct{}{}
	}
	d.polMu.Lock()
	defer d.polMu.Unlock()
	if d.closed {
		return fmt.Errorf("set policy %v: %w", endpoint, ErrClosed)
	}
	if err := d.loadPolicies(); err != nil {
		return fmt.Errorf("set policy %v: %w", endpoint, err)
	}
	have := d.policies[be32(ep)]
	fail := func(err error) error {
		d.policies = nil // unsure what the map holds now: read it again
		return fmt.Errorf("set policy %v: %w", endpoint, err)
	}
	for k := range want {
		if _, ok := have[k]; ok {
			continue
		}
		if err := d.objs.CnilabPolicy.Put(k, datapathPolicyValue{}); err != nil {
			return fail(fmt.Errorf("add %v: %w", k.api(), err))
		}
	}
	for k := range have {
		if _, ok := want[k]; ok {
			continue
		}
		if err := d.objs.CnilabPolicy.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fail(fmt.Errorf("delete %v: %w", k.api(), err))
		}
	}
	if len(want) == 0 {
		delete(d.policies, be32(ep))
	} else {
		d.policies[be32(ep)] = want
	}
	return nil
}

// AddPolicyKey adds one allow entry (k.Endpoint required); for agents that
// apply their own ordered deltas instead of SetPolicy.
func (d *Datapath) AddPolicyKey(k PolicyKey) error {
	return d.updatePolicyKey(k, true)
}

// RemovePolicyKey removes one allow entry; an absent one is not an error.
func (d *Datapath) RemovePolicyKey(k PolicyKey) error {
	return d.updatePolicyKey(k, false)
}

func (d *Datapath) updatePolicyKey(k PolicyKey, add bool) error {
	ep, err := ipKey(k.Endpoint)
	if err != nil {
		return fmt.Errorf("policy entry %v: %w", k, err)
	}
	pk, err := policyKey(ep, k)
	if err != nil {
		return err
	}
	d.polMu.Lock()
	defer d.polMu.Unlock()
	if d.closed {
		return fmt.Errorf("policy entry %v: %w", k, ErrClosed)
	}
	if err := d.loadPolicies(); err != nil {
		return fmt.Errorf("policy entry %v: %w", k, err)
	}
	set := d.policies[pk.Endpoint]
	if add {
		if err := d.objs.CnilabPolicy.Put(pk, datapathPolicyValue{}); err != nil {
			return fmt.Errorf("add policy entry %v: %w", k, err)
		}
		if set == nil {
			set = make(policySet)
			d.policies[pk.Endpoint] = set
		}
		set[pk] = struct{}{}
		return nil
	}
	if err := d.objs.CnilabPolicy.Delete(pk); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("remove policy entry %v: %w", k, err)
	}
	delete(set, pk)
	if len(set) == 0 {
		delete(d.policies, pk.Endpoint)
	}
	return nil
}

// DeletePolicy removes every allow entry of a local endpoint.
func (d *Datapath) DeletePolicy(endpoint netip.Addr) error {
	return d.SetPolicy(endpoint, nil)
}

// PolicyEntries reads the allow entries of a local endpoint from the map,
// sorted (egress after ingress, then by identity, protocol, port).
func (d *Datapath) PolicyEntries(endpoint netip.Addr) ([]PolicyKey, error) {
	ep, err := ipKey(endpoint)
	if err != nil {
		return nil, fmt.Errorf("policy entries: %w", err)
	}
	var out []PolicyKey
	var key datapathPolicyKey
	var val datapathPolicyValue
	it := d.objs.CnilabPolicy.Iterate()
	for it.Next(&key, &val) {
		if key.Endpoint == be32(ep) {
			out = append(out, key.api())
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("policy entries %v: %w", endpoint, err)
	}
	slices.SortFunc(out, comparePolicyKeys)
	return out, nil
}

func comparePolicyKeys(a, b PolicyKey) int {
	bit := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	return cmp.Or(
		cmp.Compare(bit(a.Egress), bit(b.Egress)),
		cmp.Compare(a.Identity, b.Identity),
		cmp.Compare(a.Proto, b.Proto),
		cmp.Compare(a.Port, b.Port),
	)
}
