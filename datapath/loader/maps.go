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

// UpsertEndpoint adds or updates a local pod.
func (d *Datapath) UpsertEndpoint(ip netip.Addr, ep EndpointInfo) error {
	key, err := ipKey(ip)
	if err != nil {
		return fmt.Errorf("upsert endpoint: %w", err)
	}
	if ep.Ifindex <= 0 || len(ep.PodMAC) != 6 || len(ep.HostMAC) != 6 {
		return fmt.Errorf("upsert endpoint %v: need an ifindex and two 6-byte MACs, got %+v", ip, ep)
	}
	val := datapathEndpointInfo{Ifindex: uint32(ep.Ifindex)}
	copy(val.PodMac[:], ep.PodMAC)
	copy(val.HostMac[:], ep.HostMAC)
	if err := d.objs.CnilabEndpoints.Put(key, val); err != nil {
		return fmt.Errorf("upsert endpoint %v: %w", ip, err)
	}
	return nil
}

// DeleteEndpoint removes a local pod; an absent one is not an error.
func (d *Datapath) DeleteEndpoint(ip netip.Addr) error {
	key, err := ipKey(ip)
	if err != nil {
		return fmt.Errorf("delete endpoint: %w", err)
	}
	if err := d.objs.CnilabEndpoints.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete endpoint %v: %w", ip, err)
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
			Ifindex: int(val.Ifindex),
			PodMAC:  net.HardwareAddr(append([]byte(nil), val.PodMac[:]...)),
			HostMAC: net.HardwareAddr(append([]byte(nil), val.HostMac[:]...)),
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	return out, nil
}

func remoteKey(p netip.Prefix) (datapathRemoteKey, error) {
	if !p.IsValid() || !p.Addr().Unmap().Is4() {
		return datapathRemoteKey{}, fmt.Errorf("%v is not an IPv4 prefix", p)
	}
	bits := p.Bits()
	if p.Addr().Is4In6() {
		bits -= 96
	}
	if bits < 0 {
		return datapathRemoteKey{}, fmt.Errorf("%v is not an IPv4 prefix", p)
	}
	a := netip.PrefixFrom(p.Addr().Unmap(), bits).Masked().Addr().As4()
	return datapathRemoteKey{Prefixlen: uint32(bits), Addr: be32(a)}, nil
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
