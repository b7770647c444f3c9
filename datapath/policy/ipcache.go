package policy

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// compiler holds the identities of one compilation.
type compiler struct {
	// prefixes are every policy ipBlock cidr and except, sorted, unique.
	prefixes []netip.Prefix
	ipcache  map[netip.Prefix]uint32
	// idents are every identity of the ipcache, sorted by number; pods are
	// the pod identities among them.
	idents, pods []*ident
	local        []localEndpoint
	// Scratch buffers of compileRule.
	scratchIDs     []uint32
	scratchTargets []*ident
	scratchEntries []entry
}

// localEndpoint is a pod of this node.
type localEndpoint struct {
	pod  *Pod
	addr netip.Addr
}

// identities computes the identity of every ipcache entry and fills
// c.ipcache, c.idents, c.pods and c.local.
//
// Entries, later ones winning on the same prefix: every policy prefix
// (identity keyed by the policy prefixes that contain it, see cidrKey);
// every pod IP (podKey); every node address (IdentityHost for this node,
// otherwise remoteKey, or IdentityRemoteNode when no policy prefix contains
// it). An address resolves, by longest prefix, to an identity whose CIDR
// set is exactly the set of policy prefixes containing the address: for a
// host entry it is computed from the address; for a policy prefix P it is
// the prefixes containing P, and every policy prefix containing an address
// whose longest policy match is P contains P. So an address in an except
// hole resolves to an identity whose set includes the except.
func (c *compiler) identities(s State, local Local, alloc *Allocator) error {
	byKey := map[string]*ident{}
	entries := map[netip.Prefix]*ident{}
	get := func(key string, set bitset) *ident {
		id := byKey[key]
		if id == nil {
			id = &ident{key: key, sets: []bitset{set}}
			byKey[key] = id
		}
		return id
	}
	for _, p := range c.prefixes {
		list, set := c.containing(p)
		entries[p] = get(cidrKey(list), set)
	}

	nodeAddrs := map[netip.Addr]bool{} // address → is this node's
	for _, n := range s.Nodes {
		for _, a := range n.IPs {
			nodeAddrs[a.Unmap()] = n.Name == local.NodeName
		}
	}
	nsLabels := map[string]map[string]string{}
	for _, ns := range s.Namespaces {
		nsLabels[ns.Name] = ns.Labels
	}
	for _, pod := range sortedPods(s.Pods) {
		addr := pod.IP.Unmap()
		if _, isNode := nodeAddrs[addr]; !addr.IsValid() || isNode {
			continue
		}
		host := netip.PrefixFrom(addr, addr.BitLen())
		if old := entries[host]; old != nil && old.pod {
			continue // two pods claim one IP: the first (namespace/name) wins
		}
		nsl, ok := nsLabels[pod.Namespace]
		if !ok {
			nsl = map[string]string{corev1.LabelMetadataName: pod.Namespace}
		}
		list, set := c.containing(host)
		id := get(podKey(pod.Namespace, nsl, pod.Labels, list), set)
		id.pod, id.ns, id.nsLabels, id.labels = true, pod.Namespace, nsl, pod.Labels
		id.addPorts(pod.Ports)
		entries[host] = id
		if pod.Node == local.NodeName {
			c.local = append(c.local, localEndpoint{pod: pod, addr: addr})
		}
	}

	hostID := &ident{id: IdentityHost, key: reservedNames[IdentityHost]}
	remoteID := &ident{id: IdentityRemoteNode, key: reservedNames[IdentityRemoteNode], sets: []bitset{nil}}
	for _, a := range slices.SortedFunc(maps.Keys(nodeAddrs), netip.Addr.Compare) {
		host := netip.PrefixFrom(a, a.BitLen())
		list, set := c.containing(host)
		switch {
		case nodeAddrs[a]:
			hostID.sets = append(hostID.sets, set)
			entries[host] = hostID
		case len(list) == 0:
			entries[host] = remoteID
		default:
			entries[host] = get(remoteKey(list), set)
		}
	}

	// Number the computed identities still in use, in key order.
	live := map[*ident]bool{}
	for _, id := range entries {
		live[id] = true
	}
	var keys []string
	for k, id := range byKey {
		if live[id] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if err := alloc.assign(keys); err != nil {
		return err
	}
	for _, k := range keys {
		byKey[k].id, _ = alloc.Lookup(k)
	}
	c.ipcache = make(map[netip.Prefix]uint32, len(entries))
	for p, id := range entries {
		c.ipcache[p] = id.id
	}
	for id := range live {
		c.idents = append(c.idents, id)
	}
	slices.SortFunc(c.idents, func(a, b *ident) int { return cmp.Compare(a.id, b.id) })
	for _, id := range c.idents {
		if id.pod {
			c.pods = append(c.pods, id)
		}
	}
	return nil
}

// containing returns the policy prefixes that contain p (p included when it
// is one), as a sorted list and as a set of indices into c.prefixes.
func (c *compiler) containing(p netip.Prefix) ([]netip.Prefix, bitset) {
	var list []netip.Prefix
	var set bitset
	for i, q := range c.prefixes {
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			list = append(list, q)
			set = set.with(i)
		}
	}
	return list, set
}

// bitset is a set of indices into compiler.prefixes.
type bitset []uint64

func (s bitset) has(i int) bool { return i/64 < len(s) && s[i/64]&(1<<(i%64)) != 0 }

func (s bitset) with(i int) bitset {
	for len(s) <= i/64 {
		s = append(s, 0)
	}
	s[i/64] |= 1 << (i % 64)
	return s
}

// addPorts records the named container ports of a pod of the identity.
func (id *ident) addPorts(ports []corev1.ContainerPort) {
	for _, cp := range ports {
		proto := containerProto(cp.Protocol)
		if cp.Name == "" || proto == ProtoAny || cp.ContainerPort <= 0 || cp.ContainerPort > 65535 {
			continue
		}
		if id.ports == nil {
			id.ports = map[namedPort][]uint16{}
		}
		k := namedPort{cp.Name, proto}
		if !slices.Contains(id.ports[k], uint16(cp.ContainerPort)) {
			id.ports[k] = append(id.ports[k], uint16(cp.ContainerPort))
		}
	}
}

// sortedPods returns pointers to the pods in namespace/name order.
func sortedPods(pods []Pod) []*Pod {
	out := make([]*Pod, len(pods))
	for i := range pods {
		out[i] = &pods[i]
	}
	slices.SortFunc(out, func(a, b *Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}
