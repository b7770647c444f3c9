package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
)

// ipKey is an IPv4 address in network byte order, as the programs see it.
func ipKey(ip netip.Addr) ([4]byte, error) {
	ip = ip.Unmap()
	if !ip.Is4() {
		return [4]byte{}, fmt.Errorf("%v is not an IPv4 address", ip)
	}
	return ip.As4(), nil
}

// be32 packs an IPv4 address into a uint32 whose memory holds the address in
// network byte order (the C side's __u32 in network order).
func be32(a [4]byte) uint32 { return binary.NativeEndian.Uint32(a[:]) }

func addrOf(v uint32) netip.Addr {
	var a [4]byte
	binary.NativeEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// endpoint_info.flags (bpf/lib/maps.h).
const (
	epIngressEnforced = 1 << 0
	epEgressEnforced  = 1 << 1
)

func endpointFlags(ingress, egress bool) uint32 {
	var f uint32
	if ingress {
		f |= epIngressEnforced
	}
	if egress {
		f |= epEgressEnforced
	}
	return f
}

// UpsertEndpoint adds or updates a local pod, its policy enforcement flags
// included: write the pod's policy entries (SetPolicy) before turning a
// direction's enforcement on, so that no allowed connection is dropped in
// between. A pod whose host-side veth is registered here may only send
// from its own address: other sources are dropped ("Invalid source ip").
func (d *Datapath) UpsertEndpoint(ip netip.Addr, ep EndpointInfo) error {
	key, err := ipKey(ip)
	if err != nil {
		return fmt.Errorf("upsert endpoint: %w", err)
	}
	if ep.Ifindex <= 0 || len(ep.PodMAC) != 6 || len(ep.HostMAC) != 6 {
		return fmt.Errorf("upsert endpoint %v: need an ifindex and two 6-byte MACs, got %+v", ip, ep)
	}
	val := datapathEndpointInfo{Ifindex: uint32(ep.Ifindex), Flags: endpointFlags(ep.PolicyIngress, ep.PolicyEgress)}
	copy(val.PodMac[:], ep.PodMAC)
	copy(val.HostMac[:], ep.HostMAC)
	d.epMu.Lock()
	defer d.epMu.Unlock()
	if d.closed {
		return fmt.Errorf("upsert endpoint %v: %w", ip, ErrClosed)
	}
	var old datapathEndpointInfo
	hadOld, err := lookupEndpoint(d.objs.CnilabEndpoints, key, &old)
	if err != nil {
		return fmt.Errorf("upsert endpoint %v: %w", ip, err)
	}
	// The endpoint before its veth's owner entry: a packet from the veth
	// in between finds the endpoint and passes.
	if err := d.objs.CnilabEndpoints.Put(key, val); err != nil {
		return fmt.Errorf("upsert endpoint %v: %w", ip, err)
	}
	if err := d.objs.CnilabLxc.Put(uint32(ep.Ifindex), be32(key)); err != nil {
		return fmt.Errorf("upsert endpoint %v: veth owner: %w", ip, err)
	}
	if hadOld && old.Ifindex != val.Ifindex {
		if err := d.deleteOwner(old.Ifindex, key); err != nil {
			return fmt.Errorf("upsert endpoint %v: %w", ip, err)
		}
	}
	return nil
}

// lookupEndpoint reads an endpoint entry: absent is (false, nil), and any
// other failure an error, so that no caller takes a failed read for "none".
func lookupEndpoint(m *ebpf.Map, key [4]byte, val *datapathEndpointInfo) (bool, error) {
	err := m.Lookup(key, val)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return false, nil
	}
	return err == nil, err
}

// deleteOwner removes the veth owner entry of ifindex if it is ip's.
func (d *Datapath) deleteOwner(ifindex uint32, ip [4]byte) error {
	var owner uint32
	err := d.objs.CnilabLxc.Lookup(ifindex, &owner)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read veth owner %d: %w", ifindex, err)
	}
	if owner != be32(ip) {
		return nil
	}
	if err := d.objs.CnilabLxc.Delete(ifindex); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete veth owner %d: %w", ifindex, err)
	}
	return nil
}

// VethOwner is an entry of the veth-owner map: host-side veth ifindex → pod.
type VethOwner struct {
	Ifindex int
	IP      netip.Addr
}

// PruneVethOwners removes every veth-owner entry whose pod has no endpoint
// on that veth, and returns them. Upsert and delete keep the map in step
// with the endpoints; an entry this finds was left by a path that did not
// (a crash between the two writes, a bug), and would keep the source check
// off a reused ifindex.
func (d *Datapath) PruneVethOwners() ([]VethOwner, error) {
	d.epMu.Lock()
	defer d.epMu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("prune veth owners: %w", ErrClosed)
	}
	var stale []VethOwner
	var ifindex, owner uint32
	it := d.objs.CnilabLxc.Iterate()
	for it.Next(&ifindex, &owner) {
		var ep datapathEndpointInfo
		found, err := lookupEndpoint(d.objs.CnilabEndpoints, addrOf(owner).As4(), &ep)
		if err != nil {
			// Unsure is not stale: an owner entry wrongly removed would
			// take its live veth's source check away.
			return nil, fmt.Errorf("prune veth owners: endpoint %v: %w", addrOf(owner), err)
		}
		if found && ep.Ifindex == ifindex {
			continue
		}
		stale = append(stale, VethOwner{Ifindex: int(ifindex), IP: addrOf(owner)})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("prune veth owners: %w", err)
	}
	for _, o := range stale {
		if err := d.objs.CnilabLxc.Delete(uint32(o.Ifindex)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return stale, fmt.Errorf("prune veth owner %d: %w", o.Ifindex, err)
		}
	}
	return stale, nil
}

// SetEndpointPolicy turns a local pod's ingress and egress enforcement on
// or off, leaving the rest of its entry alone. The pod must be in the map.
func (d *Datapath) SetEndpointPolicy(ip netip.Addr, ingress, egress bool) error {
	key, err := ipKey(ip)
	if err != nil {
		return fmt.Errorf("set endpoint policy: %w", err)
	}
	d.epMu.Lock()
	defer d.epMu.Unlock()
	if d.closed {
		return fmt.Errorf("set endpoint policy %v: %w", ip, ErrClosed)
	}
	var val datapathEndpointInfo
	if err := d.objs.CnilabEndpoints.Lookup(key, &val); err != nil {
		return fmt.Errorf("set endpoint policy %v: %w", ip, err)
	}
	val.Flags = val.Flags&^(epIngressEnforced|epEgressEnforced) | endpointFlags(ingress, egress)
	if err := d.objs.CnilabEndpoints.Update(key, val, ebpf.UpdateExist); err != nil {
		return fmt.Errorf("set endpoint policy %v: %w", ip, err)
	}
	return nil
}

// DeleteEndpoint removes a local pod; an absent one is not an error. Its
// policy entries stay until DeletePolicy.
func (d *Datapath) DeleteEndpoint(ip netip.Addr) error {
	key, err := ipKey(ip)
	if err != nil {
		return fmt.Errorf("delete endpoint: %w", err)
	}
	d.epMu.Lock()
	defer d.epMu.Unlock()
	if d.closed {
		return fmt.Errorf("delete endpoint %v: %w", ip, ErrClosed)
	}
	var old datapathEndpointInfo
	hadOld, err := lookupEndpoint(d.objs.CnilabEndpoints, key, &old)
	if err != nil {
		return fmt.Errorf("delete endpoint %v: %w", ip, err)
	}
	if err := d.objs.CnilabEndpoints.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete endpoint %v: %w", ip, err)
	}
	if hadOld {
		if err := d.deleteOwner(old.Ifindex, key); err != nil {
			return fmt.Errorf("delete endpoint %v: %w", ip, err)
		}
	}
	return nil
}

// Endpoints lists the local pods in the map.
func (d *Datapath) Endpoints() (map[netip.Addr]EndpointInfo, error) {
	out := make(map[netip.Addr]EndpointInfo)
	var key [4]byte
	var val datapathEndpointInfo
	it := d.objs.CnilabEndpoints.Iterate()
	for it.Next(&key, &val) {
		out[netip.AddrFrom4(key)] = EndpointInfo{
			Ifindex:       int(val.Ifindex),
			PodMAC:        net.HardwareAddr(append([]byte(nil), val.PodMac[:]...)),
			HostMAC:       net.HardwareAddr(append([]byte(nil), val.HostMac[:]...)),
			PolicyIngress: val.Flags&epIngressEnforced != 0,
			PolicyEgress:  val.Flags&epEgressEnforced != 0,
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	return out, nil
}

// lpmKey is an IPv4 prefix as an LPM trie key: its length and its masked
// address in network byte order.
func lpmKey(p netip.Prefix) (bits uint32, addr uint32, err error) {
	if !p.IsValid() || !p.Addr().Unmap().Is4() {
		return 0, 0, fmt.Errorf("%v is not an IPv4 prefix", p)
	}
	n := p.Bits()
	if p.Addr().Is4In6() {
		n -= 96
	}
	if n < 0 {
		return 0, 0, fmt.Errorf("%v is not an IPv4 prefix", p)
	}
	a := netip.PrefixFrom(p.Addr().Unmap(), n).Masked().Addr().As4()
	return uint32(n), be32(a), nil
}

func remoteKey(p netip.Prefix) (datapathRemoteKey, error) {
	bits, addr, err := lpmKey(p)
	return datapathRemoteKey{Prefixlen: bits, Addr: addr}, err
}

// UpsertRemote routes a remote node's PodCIDR to the node's underlay IP
// (used in VXLAN mode).
func (d *Datapath) UpsertRemote(p netip.Prefix, nodeIP netip.Addr) error {
	key, err := remoteKey(p)
	if err != nil {
		return fmt.Errorf("upsert remote: %w", err)
	}
	node, err := ipKey(nodeIP)
	if err != nil {
		return fmt.Errorf("upsert remote %v: node IP: %w", p, err)
	}
	if err := d.objs.CnilabRemote.Put(key, datapathRemoteInfo{NodeIp: be32(node)}); err != nil {
		return fmt.Errorf("upsert remote %v: %w", p, err)
	}
	return nil
}

// DeleteRemote removes a remote PodCIDR; an absent one is not an error.
func (d *Datapath) DeleteRemote(p netip.Prefix) error {
	key, err := remoteKey(p)
	if err != nil {
		return fmt.Errorf("delete remote: %w", err)
	}
	if err := d.objs.CnilabRemote.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete remote %v: %w", p, err)
	}
	return nil
}

// Remotes lists the remote PodCIDRs and their node IPs.
func (d *Datapath) Remotes() (map[netip.Prefix]netip.Addr, error) {
	out := make(map[netip.Prefix]netip.Addr)
	var key datapathRemoteKey
	var val datapathRemoteInfo
	it := d.objs.CnilabRemote.Iterate()
	for it.Next(&key, &val) {
		out[netip.PrefixFrom(addrOf(key.Addr), int(key.Prefixlen))] = addrOf(val.NodeIp)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list remotes: %w", err)
	}
	return out, nil
}
