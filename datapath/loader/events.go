package loader

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// Observability. The programs report what they do with packets in two ways
// (bpf/lib/events.h):
//
//   - flow events, records in the pinned BPF ring buffer cnilab_events, read
//     with ReadEvents: every drop, every new connection, the first reply of
//     a connection, and the first FIN or RST of each direction of a TCP
//     connection. Other packets of tracked connections give none. Events
//     that find the ring full are counted (LostEvents), never lost silently.
//     Options.NoEvents turns them off.
//   - per-CPU packet and byte counters (pinned, so they survive agent
//     restarts), read with Counters: every packet a hook decides on,
//     forwarded by direction or dropped by reason and direction.
//
// Direction is the local endpoint's point of view: EGRESS for what a local
// pod sends (its host-side veth's ingress hook decides), INGRESS for what is
// delivered to a local pod. A packet between two pods of the same node is
// both, and is reported and counted once as each (as Hubble shows two
// observation points for it), unless it is dropped: then only the check
// that dropped it reports and counts it. A packet to or from another node
// or the node itself is one of them on this node.

// Verdict is what the datapath did with a packet; the numbers are Hubble's.
type Verdict uint8

const (
	Forwarded Verdict = 1
	Dropped   Verdict = 2
)

func (v Verdict) String() string {
	switch v {
	case Forwarded:
		return "FORWARDED"
	case Dropped:
		return "DROPPED"
	}
	return fmt.Sprintf("Verdict(%d)", uint8(v))
}

// Direction is the point of view of the local endpoint a verdict is for;
// the numbers are Hubble's TrafficDirection.
type Direction uint8

const (
	// Ingress: into a local endpoint.
	Ingress Direction = 1
	// Egress: out of a local endpoint.
	Egress Direction = 2
)

func (d Direction) String() string {
	switch d {
	case Ingress:
		return "INGRESS"
	case Egress:
		return "EGRESS"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// flow_event.flags (bpf/lib/events.h).
const (
	flowReply   = 1 << 0
	flowNew     = 1 << 1
	flowClosing = 1 << 2
	flowToStack = 1 << 3
)

// FlowEvent is one flow event, decoded.
//
// When a packet gives an event:
//
//   - dropped: Verdict Dropped, DropReason set, Direction of the check that
//     dropped it (one event also for a packet between two local pods);
//   - the first packet of a new connection, allowed: New;
//   - the first packet of a connection the reply way: IsReply;
//   - the first FIN or RST of each direction of a TCP connection: Closing
//     (with IsReply when it goes the reply way).
//
// A packet gives one event per observation (Direction), with every flag
// that applies: between two pods of the same node, an allowed packet gives
// an Egress event (the sender's view) followed by an Ingress event (the
// receiver's). Rarely, two CPUs racing on one connection both report its
// first reply or its closing.
type FlowEvent struct {
	// Time is when the program saw the packet (converted from the kernel's
	// monotonic clock with the offset measured at Load).
	Time time.Time
	// Src and Dst are the packet's addresses, SrcPort and DstPort its
	// TCP, UDP or SCTP ports (host byte order). For ICMP echo, the
	// request's SrcPort and the reply's DstPort are the echo identifier,
	// as conntrack keys them; for other packets they are 0.
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	// Proto is the IP protocol (ProtoTCP, ...).
	Proto uint8
	// ICMPType and ICMPCode are the ICMP header's (Proto ProtoICMP; 0 for
	// fragments after the first).
	ICMPType, ICMPCode uint8
	Verdict            Verdict
	// DropReason is why the packet was dropped; 0 when forwarded.
	DropReason DropReason
	Direction  Direction
	// IsReply: the packet goes the reply way of its connection.
	IsReply bool
	// New: the packet started a connection (its conntrack entry).
	New bool
	// Closing: the first FIN or RST of its direction.
	Closing bool
	// ToStack: the packet went to the node's stack untranslated, for the
	// Service CIDR (kube-proxy translates it there; the translated
	// connection gives its own events).
	ToStack bool
	// TCPFlags is the TCP header's flags byte (FIN 0x01, SYN 0x02, RST
	// 0x04, PSH 0x08, ACK 0x10, ...), 0 for other protocols.
	TCPFlags uint8
	// SrcIdentity and DstIdentity are the identities of the addresses
	// (ipcache, IdentityWorld without entry; IdentityHost for what the
	// node's own stack sends to a pod).
	SrcIdentity, DstIdentity uint32
	// Ifindex is the host-side veth of the local endpoint the event is
	// for: the sender's for Egress, the receiver's for Ingress.
	Ifindex uint32
	// Len is the packet's length, Ethernet header included.
	Len uint32
}

func (e FlowEvent) String() string {
	s := fmt.Sprintf("%s %s %s %v:%d -> %v:%d proto=%d ids=%d->%d ifindex=%d len=%d",
		e.Time.Format(time.RFC3339Nano), e.Verdict, e.Direction, e.Src, e.SrcPort, e.Dst, e.DstPort,
		e.Proto, e.SrcIdentity, e.DstIdentity, e.Ifindex, e.Len)
	if e.Verdict == Dropped {
		s += fmt.Sprintf(" reason=%d (%s)", uint16(e.DropReason), e.DropReason)
	}
	if e.Proto == ProtoTCP {
		s += fmt.Sprintf(" tcp_flags=%#02x", e.TCPFlags)
	}
	if e.Proto == ProtoICMP {
		s += fmt.Sprintf(" icmp=%d/%d", e.ICMPType, e.ICMPCode)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{e.New, "new"}, {e.IsReply, "reply"}, {e.Closing, "closing"}} {
		if f.on {
			s += " " + f.name
		}
	}
	return s
}

// flowEventSize is sizeof(struct flow_event).
const flowEventSize = 48

// decodeFlowEvent decodes a struct flow_event (bpf/lib/maps.h); boot is the
// wall-clock time of ktime 0.
func decodeFlowEvent(b []byte, boot time.Time) (FlowEvent, error) {
	if len(b) < flowEventSize {
		return FlowEvent{}, fmt.Errorf("flow event of %d bytes, want %d", len(b), flowEventSize)
	}
	ne := binary.NativeEndian
	flags := b[23]
	return FlowEvent{
		Time:        boot.Add(time.Duration(ne.Uint64(b[0:]))),
		Src:         netip.AddrFrom4([4]byte(b[8:12])),
		Dst:         netip.AddrFrom4([4]byte(b[12:16])),
		SrcPort:     binary.BigEndian.Uint16(b[16:]),
		DstPort:     binary.BigEndian.Uint16(b[18:]),
		Proto:       b[20],
		Verdict:     Verdict(b[21]),
		Direction:   Direction(b[22]),
		IsReply:     flags&flowReply != 0,
		New:         flags&flowNew != 0,
		Closing:     flags&flowClosing != 0,
		ToStack:     flags&flowToStack != 0,
		DropReason:  DropReason(ne.Uint16(b[24:])),
		TCPFlags:    b[26],
		ICMPType:    b[27],
		SrcIdentity: ne.Uint32(b[28:]),
		DstIdentity: ne.Uint32(b[32:]),
		Ifindex:     ne.Uint32(b[36:]),
		Len:         ne.Uint32(b[40:]),
		ICMPCode:    b[44],
	}, nil
}

// EventsPollInterval is how long events may wait in the ring buffer before
// ReadEvents sees them: to spare a wakeup (an inter-processor interrupt)
// per event, the programs wake the reader only when a sixteenth of the
// ring is full, and the reader otherwise looks at this interval.
const EventsPollInterval = 50 * time.Millisecond

// eventsWakeupDivisor: the programs wake the reader when 1/eventsWakeupDivisor
// of the ring is waiting.
const eventsWakeupDivisor = 16

// ErrEventsBusy is returned by ReadEvents while another ReadEvents runs.
var ErrEventsBusy = errors.New("flow events are already being read")

// ReadEvents reads flow events from the ring buffer and calls fn with each,
// in the order the programs wrote them, until ctx ends; then it returns nil
// (or the error that stopped it). An event reaches fn at most about
// EventsPollInterval after the program wrote it, sooner under load. Events
// not read yet stay in the ring for the next call. One call at a time: a
// concurrent call returns ErrEventsBusy. fn runs on ReadEvents' goroutine;
// while it blocks, events queue in the ring (1 MiB, about 18,700 events)
// and then are lost (LostEvents). Cancel ctx before Close.
func (d *Datapath) ReadEvents(ctx context.Context, fn func(FlowEvent)) error {
	if !d.eventsMu.TryLock() {
		return ErrEventsBusy
	}
	defer d.eventsMu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil
	}
	rd, err := ringbuf.NewReader(d.objs.CnilabEvents)
	if err != nil {
		return fmt.Errorf("read flow events: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer func() {
		stop()
		rd.Close()
	}()
	// The programs wake the reader only when a lot is waiting
	// (cfg_events_wakeup): the rest is read at the poll interval.
	poll := func() { rd.SetDeadline(time.Now().Add(EventsPollInterval)) }
	poll()
	var rec ringbuf.Record
	for {
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				poll()
				continue
			}
			if ctx.Err() != nil && (errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed)) {
				return nil
			}
			return fmt.Errorf("read flow events: %w", err)
		}
		ev, err := decodeFlowEvent(rec.RawSample, d.boot)
		if err != nil {
			return fmt.Errorf("read flow events: %w", err)
		}
		fn(ev)
		if rec.Remaining == 0 {
			poll() // caught up: the next read waits
		}
	}
}

// Counter is a packet and byte count of one verdict, drop reason (0 when
// forwarded) and direction, summed over CPUs, since the counters' map was
// created (they survive agent restarts).
type Counter struct {
	Verdict    Verdict
	DropReason DropReason
	Direction  Direction
	Packets    uint64
	Bytes      uint64
}

// metricsReasons is METRICS_REASONS (bpf/lib/maps.h): the index of
// cnilab_metrics is ((verdict-1)*2 + direction-1)*metricsReasons + reason.
const metricsReasons = 256

func metricsKey(i uint32) (Verdict, Direction, DropReason) {
	return Verdict(i/metricsReasons/2 + 1), Direction(i/metricsReasons%2 + 1), DropReason(i % metricsReasons)
}

// Counters returns the counters that are not zero, sorted by verdict,
// direction and reason. A packet is counted once per observation (see
// FlowEvent): forwarded between two pods of this node it counts as Egress
// and as Ingress, dropped it counts once, where it was dropped. Bytes
// include Ethernet headers.
func (d *Datapath) Counters() ([]Counter, error) {
	m := d.objs.CnilabMetrics
	n := int(m.MaxEntries())
	keys := make([]uint32, n)
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	vals := make([]datapathMetricsValue, n*cpus)
	var cursor ebpf.MapBatchCursor
	got, err := m.BatchLookup(&cursor, keys, vals, nil)
	switch {
	case errors.Is(err, ebpf.ErrKeyNotExist): // the end, as it should be
	case errors.Is(err, ebpf.ErrNotSupported):
		got, err = d.countersOneByOne(keys, vals, cpus)
		if err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("read counters: %w", err)
	}
	var out []Counter
	for i := range got {
		var c Counter
		for _, v := range vals[i*cpus : (i+1)*cpus] {
			c.Packets += v.Packets
			c.Bytes += v.Bytes
		}
		if c.Packets == 0 && c.Bytes == 0 {
			continue
		}
		c.Verdict, c.Direction, c.DropReason = metricsKey(keys[i])
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Counter) int {
		return cmp.Or(cmp.Compare(a.Verdict, b.Verdict), cmp.Compare(a.Direction, b.Direction),
			cmp.Compare(a.DropReason, b.DropReason))
	})
	return out, nil
}

// countersOneByOne reads the counters without the batch API (before 5.6).
func (d *Datapath) countersOneByOne(keys []uint32, vals []datapathMetricsValue, cpus int) (int, error) {
	var per []datapathMetricsValue
	for i := range keys {
		keys[i] = uint32(i)
		if err := d.objs.CnilabMetrics.Lookup(uint32(i), &per); err != nil {
			return 0, fmt.Errorf("read counters: %w", err)
		}
		copy(vals[i*cpus:(i+1)*cpus], per)
	}
	return len(keys), nil
}

// LostEvents is the number of flow events the programs could not write
// because the ring buffer was full (summed over CPUs, since the map was
// created).
func (d *Datapath) LostEvents() (uint64, error) {
	var per []uint64
	if err := d.objs.CnilabEventsLost.Lookup(uint32(0), &per); err != nil {
		return 0, fmt.Errorf("read lost events: %w", err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n, nil
}
