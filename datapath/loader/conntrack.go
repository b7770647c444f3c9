package loader

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Connection tracking. The programs create an entry in cnilab_ct for every
// new flow they let pass to, from or between local pods (keyed by the tuple
// of its first packet) and let every later packet of it through, either
// way, without a policy lookup. They never delete entries: GCConntrack does,
// for entries idle longer than their timeout (Options.Conntrack), and the
// kernel evicts the least recently used ones when the map is full.
//
// A connection that policy stops allowing therefore keeps working while it
// is tracked; only new connections are denied. ConntrackFlush forgets every
// connection.

// ct_entry.flags (bpf/lib/maps.h).
const (
	ctReplySeen = 1 << 0
	ctFinOrig   = 1 << 1
	ctFinReply  = 1 << 2
	ctRST       = 1 << 3
	ctClosing   = ctFinOrig | ctFinReply | ctRST
)

// monotonic is CLOCK_MONOTONIC, bpf_ktime_get_ns's clock.
func monotonic() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime(CLOCK_MONOTONIC): %v", err))
	}
	return time.Duration(ts.Nano())
}

// ktimeOf converts a wall-clock time to the kernel's monotonic nanoseconds.
func ktimeOf(t time.Time) uint64 {
	now, mono := time.Now(), monotonic()
	k := int64(mono) + int64(t.Sub(now))
	if k < 0 {
		return 0
	}
	return uint64(k)
}

// timeOfKtime converts the kernel's monotonic nanoseconds to wall-clock time.
func timeOfKtime(k uint64) time.Time {
	now, mono := time.Now(), monotonic()
	return now.Add(time.Duration(int64(k) - int64(mono)))
}

func (d *Datapath) ctTimeout(key *datapathCtTuple, val *datapathCtEntry) time.Duration {
	t := d.opts.Conntrack
	switch key.Proto {
	case ProtoTCP:
		switch {
		case val.Flags&ctClosing != 0:
			return t.TCPClosing
		case val.Flags&ctReplySeen == 0:
			return t.TCPSyn
		}
		return t.TCP
	case ProtoUDP, ProtoSCTP:
		return t.UDP
	}
	return t.Other
}

func (d *Datapath) ctExpired(key *datapathCtTuple, val *datapathCtEntry, now uint64) bool {
	return now > val.LastSeen && now-val.LastSeen > uint64(d.ctTimeout(key, val))
}

// GCConntrack deletes the connections that are idle at now for longer than
// their timeout (Options.Conntrack): pass time.Now(), or a later time to
// expire entries early. An entry refreshed by a packet between the scan and
// its deletion is kept. It returns how many it deleted.
func (d *Datapath) GCConntrack(now time.Time) (deleted int, err error) {
	k := ktimeOf(now)
	var expired []datapathCtTuple
	var key datapathCtTuple
	var val datapathCtEntry
	it := d.objs.CnilabCt.Iterate()
	for it.Next(&key, &val) {
		if d.ctExpired(&key, &val, k) {
			expired = append(expired, key)
		}
	}
	// Iteration can be aborted by concurrent insertions and evictions: the
	// entries seen so far are still collected, the rest wait for next time.
	scanErr := it.Err()
	for i := range expired {
		if err := d.objs.CnilabCt.Lookup(&expired[i], &val); err != nil || !d.ctExpired(&expired[i], &val, k) {
			continue
		}
		if err := d.objs.CnilabCt.Delete(&expired[i]); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return deleted, fmt.Errorf("conntrack gc: %w", err)
		}
		deleted++
	}
	if scanErr != nil {
		return deleted, fmt.Errorf("conntrack gc: %w", scanErr)
	}
	return deleted, nil
}

// ConntrackCount is the number of tracked connections.
func (d *Datapath) ConntrackCount() (int, error) {
	n := 0
	var key datapathCtTuple
	var val datapathCtEntry
	it := d.objs.CnilabCt.Iterate()
	for it.Next(&key, &val) {
		n++
	}
	if err := it.Err(); err != nil {
		return n, fmt.Errorf("count conntrack: %w", err)
	}
	return n, nil
}

// Conntrack lists the tracked connections.
func (d *Datapath) Conntrack() ([]ConntrackEntry, error) {
	var out []ConntrackEntry
	var key datapathCtTuple
	var val datapathCtEntry
	it := d.objs.CnilabCt.Iterate()
	for it.Next(&key, &val) {
		out = append(out, ConntrackEntry{
			Proto:     key.Proto,
			Src:       netip.AddrPortFrom(addrOf(key.Saddr), be16(key.Sport)),
			Dst:       netip.AddrPortFrom(addrOf(key.Daddr), be16(key.Dport)),
			Created:   timeOfKtime(val.Created),
			LastSeen:  timeOfKtime(val.LastSeen),
			ReplySeen: val.Flags&ctReplySeen != 0,
			FinOrig:   val.Flags&ctFinOrig != 0,
			FinReply:  val.Flags&ctFinReply != 0,
			RST:       val.Flags&ctRST != 0,
		})
	}
	if err := it.Err(); err != nil {
		return out, fmt.Errorf("list conntrack: %w", err)
	}
	return out, nil
}

// ConntrackFlush forgets every tracked connection (for tests): the next
// packet of each is checked against policy as a new flow, in whichever
// direction it goes.
func (d *Datapath) ConntrackFlush() error {
	var keys []datapathCtTuple
	var key datapathCtTuple
	var val datapathCtEntry
	it := d.objs.CnilabCt.Iterate()
	for it.Next(&key, &val) {
		keys = append(keys, key)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("flush conntrack: %w", err)
	}
	for i := range keys {
		if err := d.objs.CnilabCt.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("flush conntrack: %w", err)
		}
	}
	return nil
}

// MapEntries counts the entries of every map that holds per-pod or
// per-connection state, by map name: conntrack, endpoints, veth owners,
// the ipcache (identities), remote nodes, policy keys and fragments. After
// every pod is gone they return to what the node itself needs; a count
// that keeps growing is a leak.
func (d *Datapath) MapEntries() (map[string]int, error) {
	out := map[string]int{}
	for name, m := range map[string]*ebpf.Map{
		"cnilab_ct": d.objs.CnilabCt, "cnilab_endpoints": d.objs.CnilabEndpoints, "cnilab_lxc": d.objs.CnilabLxc,
		"cnilab_ipcache": d.objs.CnilabIpcache, "cnilab_remote": d.objs.CnilabRemote, "cnilab_policy": d.objs.CnilabPolicy,
		"cnilab_frag": d.objs.CnilabFrag,
	} {
		var k, v []byte
		n := 0
		it := m.Iterate()
		for it.Next(&k, &v) {
			n++
		}
		if err := it.Err(); err != nil {
			return out, fmt.Errorf("count %s: %w", name, err)
		}
		out[name] = n
	}
	return out, nil
}
