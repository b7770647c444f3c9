package loader

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// Packets for the policy tests. L4 checksums are not computed: the
// programs do not look at them.

const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10

	ipMF = 0x2000
)

// ipv4 builds Ethernet/IPv4 around an L4 payload, with a valid IP header
// checksum. frag is the flags+offset field (host order).
func ipv4(src, dst netip.Addr, proto uint8, l4 []byte, id, frag uint16) []byte {
	p := make([]byte, 14+20+len(l4))
	copy(p[0:6], dstMAC)
	copy(p[6:12], srcMAC)
	binary.BigEndian.PutUint16(p[12:], 0x0800)
	ip := p[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
	binary.BigEndian.PutUint16(ip[4:], id)
	binary.BigEndian.PutUint16(ip[6:], frag)
	ip[8], ip[9] = 64, proto
	s, d := src.As4(), dst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], csum(ip))
	copy(p[34:], l4)
	return p
}

func tcpHdr(sport, dport uint16, flags uint8) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	h[12] = 5 << 4
	h[13] = flags
	binary.BigEndian.PutUint16(h[14:], 65535)
	return h
}

func udpHdr(sport, dport uint16, payload int) []byte {
	h := make([]byte, 8+payload)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+payload))
	return h
}

func icmpMsg(typ, code uint8, id, seq uint16, body []byte) []byte {
	h := make([]byte, 8, 8+len(body))
	h[0], h[1] = typ, code
	binary.BigEndian.PutUint16(h[4:], id)
	binary.BigEndian.PutUint16(h[6:], seq)
	return append(h, body...)
}

func tcpPkt(src, dst netip.Addr, sport, dport uint16, flags uint8) []byte {
	return ipv4(src, dst, ProtoTCP, tcpHdr(sport, dport, flags), 1, 0)
}

func udpPkt(src, dst netip.Addr, sport, dport uint16) []byte {
	return ipv4(src, dst, ProtoUDP, udpHdr(sport, dport, 8), 1, 0)
}

func sctpPkt(src, dst netip.Addr, sport, dport uint16) []byte {
	h := make([]byte, 12)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	return ipv4(src, dst, ProtoSCTP, h, 1, 0)
}

func echoPkt(src, dst netip.Addr, typ uint8, id uint16) []byte {
	return ipv4(src, dst, ProtoICMP, icmpMsg(typ, 0, id, 1, []byte("cnilab!!")), 1, 0)
}

// icmpErrorPkt is an ICMP destination unreachable from src to dst quoting
// the IP packet orig (without its Ethernet header).
func icmpErrorPkt(src, dst netip.Addr, code uint8, orig []byte) []byte {
	quote := orig[14:]
	if len(quote) > 28 {
		quote = quote[:28]
	}
	return ipv4(src, dst, ProtoICMP, icmpMsg(3, code, 0, 0, quote), 1, 0)
}

// skbCtx is the start of struct __sk_buff up to ingress_ifindex, for
// BPF_PROG_TEST_RUN's context (the kernel zero-fills the rest).
type skbCtx struct {
	_              [9]uint32
	IngressIfindex uint32
}

// verdict runs prog on pkt as if it had entered the device ingressIfindex
// (0: sent by the local stack).
func verdict(t testing.TB, prog *ebpf.Program, pkt []byte, ingressIfindex uint32) uint32 {
	t.Helper()
	ret, err := prog.Run(&ebpf.RunOptions{
		Data:    pkt,
		DataOut: make([]byte, len(pkt)+256),
		Context: skbCtx{IngressIfindex: ingressIfindex},
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return ret
}

// Test addresses: D (localIP) and S (srcIP) are local pods, remIP a remote
// pod, otherIP an address without identity (world), hostIP this node.
const (
	ifD  = 1000
	ifS  = 1001
	idS  = 300
	idD  = 301
	idR  = 400 // 10.244.1.0/24
	idX  = 500 // an identity no address has
	port = 80
)

var hostIP = netip.MustParseAddr("10.244.0.1")

type policyFixture struct {
	t testing.TB
	d *Datapath
}

func newPolicyFixture(t testing.TB, opts Options) *policyFixture {
	t.Helper()
	d := loadWithEntries(t, opts) // D = localIP on ifindex 1000
	// S also stands for a pod of another node where packets come in from
	// the underlay or the overlay (from_netdev and from_overlay only take
	// pod-to-pod traffic past the stack).
	if err := d.UpsertRemote(netip.PrefixFrom(srcIP, 32), netip.MustParseAddr("172.30.0.13")); err != nil {
		t.Fatal(err)
	}
	if err := d.UpsertEndpoint(srcIP, EndpointInfo{Ifindex: ifS, PodMAC: podMAC, HostMAC: hostMAC}); err != nil {
		t.Fatal(err)
	}
	for p, id := range map[string]uint32{
		srcIP.String() + "/32":   idS,
		localIP.String() + "/32": idD,
		"10.244.1.0/24":          idR,
		hostIP.String() + "/32":  IdentityHost,
	} {
		if err := d.UpsertIdentity(netip.MustParsePrefix(p), id); err != nil {
			t.Fatal(err)
		}
	}
	return &policyFixture{t: t, d: d}
}

// set enforces the given directions on ip, with exactly keys.
func (f *policyFixture) set(ip netip.Addr, ingress, egress bool, keys ...PolicyKey) {
	f.t.Helper()
	if err := f.d.SetPolicy(ip, keys); err != nil {
		f.t.Fatal(err)
	}
	if err := f.d.SetEndpointPolicy(ip, ingress, egress); err != nil {
		f.t.Fatal(err)
	}
}

func (f *policyFixture) flush() {
	f.t.Helper()
	if err := f.d.ConntrackFlush(); err != nil {
		f.t.Fatal(err)
	}
}

type verdictCase struct {
	name    string
	prog    func(*Datapath) *ebpf.Program
	pkt     []byte
	ifindex uint32
	want    uint32
}

func (f *policyFixture) check(cases ...verdictCase) {
	f.t.Helper()
	for _, c := range cases {
		if got := verdict(f.t, c.prog(f.d), c.pkt, c.ifindex); got != c.want {
			f.t.Errorf("%s: verdict %d, want %d", c.name, got, c.want)
		}
	}
}

func in(id uint32, port uint16, proto uint8) PolicyKey {
	return PolicyKey{Identity: id, Port: port, Proto: proto}
}

func eg(id uint32, port uint16, proto uint8) PolicyKey {
	return PolicyKey{Identity: id, Port: port, Proto: proto, Egress: true}
}

func toContainer(d *Datapath) *ebpf.Program { return d.objs.CnilabToContainer }

// Every step of the lookup order, wildcards, and what must not match, for a
// new TCP connection S -> D:80 on the same node (D's ingress enforced).
func TestPolicyLookupOrder(t *testing.T) {
	requireRoot(t)
	f := newPolicyFixture(t, Options{Mode: Native})
	syn := tcpPkt(srcIP, localIP, 40000, port, flagSYN)
	for _, c := range []struct {
		name string
		keys []PolicyKey
		want uint32
	}{
		{"(id, port, proto)", []PolicyKey{in(idS, port, ProtoTCP)}, actRedirect},
		{"(id, 0, proto)", []PolicyKey{in(idS, 0, ProtoTCP)}, actRedirect},
		{"(id, 0, 0)", []PolicyKey{in(idS, 0, ProtoAny)}, actRedirect},
		{"(0, port, proto)", []PolicyKey{in(IdentityAny, port, ProtoTCP)}, actRedirect},
		{"(0, 0, proto)", []PolicyKey{in(IdentityAny, 0, ProtoTCP)}, actRedirect},
		{"(0, 0, 0)", []PolicyKey{in(IdentityAny, 0, ProtoAny)}, actRedirect},
		{"all of them", []PolicyKey{in(idS, port, ProtoTCP), in(idS, 0, ProtoTCP), in(idS, 0, 0), in(0, port, ProtoTCP), in(0, 0, ProtoTCP), in(0, 0, 0)}, actRedirect},
		{"no entries", nil, actShot},
		{"other port", []PolicyKey{in(idS, port+1, ProtoTCP)}, actShot},
		{"other protocol", []PolicyKey{in(idS, port, ProtoUDP), in(idS, 0, ProtoUDP)}, actShot},
		{"other identity", []PolicyKey{in(idX, 0, ProtoAny), in(idD, 0, ProtoAny)}, actShot},
		{"any identity, other port", []PolicyKey{in(IdentityAny, port+1, ProtoTCP), in(IdentityAny, 0, ProtoSCTP)}, actShot},
		{"egress entries do not allow ingress", []PolicyKey{eg(idS, 0, 0), eg(0, 0, 0)}, actShot},
		{"world does not match a known identity", []PolicyKey{in(IdentityWorld, 0, 0)}, actShot},
	} {
		f.flush()
		f.set(localIP, true, false, c.keys...)
		if got := verdict(t, f.d.objs.CnilabFromContainer, syn, ifS); got != c.want {
			t.Errorf("%s: verdict %d, want %d", c.name, got, c.want)
		}
		// The same from another node, at from_netdev and from_overlay.
		f.flush()
		if got := verdict(t, f.d.objs.CnilabFromNetdev, syn, 7); got != c.want {
			t.Errorf("%s (from_netdev): verdict %d, want %d", c.name, got, c.want)
		}
		f.flush()
		if got := verdict(t, f.d.objs.CnilabToContainer, syn, 7); got != map[uint32]uint32{actRedirect: actOK, actShot: actShot}[c.want] {
			t.Errorf("%s (to_container): verdict %d", c.name, got)
		}
	}
	// Entries of another endpoint do not count.
	f.flush()
	f.set(localIP, true, false)
	f.set(srcIP, false, false, in(idS, 0, 0), in(0, 0, 0))
	f.check(verdictCase{"entries of another endpoint", fromContainer, syn, ifS, actShot})
	// Not enforced: everything passes, no entry needed.
	f.flush()
	f.set(localIP, false, true)
	f.check(verdictCase{"ingress not enforced", fromContainer, syn, ifS, actRedirect})
}

// ICMP has no port: only port-0 entries with protocol ICMP or any match it.
// UDP and SCTP use their ports.
func TestPolicyProtocols(t *testing.T) {
	requireRoot(t)
	f := newPolicyFixture(t, Options{Mode: Native})
	ping := echoPkt(srcIP, localIP, 8, 77)
	for _, c := range []struct {
		name string
		keys []PolicyKey
		pkt  []byte
		want uint32
	}{
		{"icmp by (id, 0, 0)", []PolicyKey{in(idS, 0, 0)}, ping, actRedirect},
		{"icmp by (id, 0, icmp)", []PolicyKey{in(idS, 0, ProtoICMP)}, ping, actRedirect},
		{"icmp by (0, 0, icmp)", []PolicyKey{in(0, 0, ProtoICMP)}, ping, actRedirect},
		{"icmp not by tcp entries", []PolicyKey{in(idS, 0, ProtoTCP), in(idS, port, ProtoTCP), in(0, 0, ProtoTCP)}, ping, actShot},
		{"icmp not by udp port 0? (proto udp)", []PolicyKey{in(idS, 0, ProtoUDP)}, ping, actShot},
		{"udp port", []PolicyKey{in(idS, 53, ProtoUDP)}, udpPkt(srcIP, localIP, 40000, 53), actRedirect},
		{"udp other port", []PolicyKey{in(idS, 53, ProtoUDP)}, udpPkt(srcIP, localIP, 40000, 54), actShot},
		{"udp by tcp port", []PolicyKey{in(idS, 53, ProtoTCP)}, udpPkt(srcIP, localIP, 40000, 53), actShot},
		{"sctp port", []PolicyKey{in(idS, port, ProtoSCTP)}, sctpPkt(srcIP, localIP, 40000, port), actRedirect},
		{"sctp by tcp port", []PolicyKey{in(idS, port, ProtoTCP)}, sctpPkt(srcIP, localIP, 40000, port), actShot},
		{"tcp source port is not the port", []PolicyKey{in(idS, 40000, ProtoTCP)}, tcpPkt(srcIP, localIP, 40000, port, flagSYN), actShot},
	} {
		f.flush()
		f.set(localIP, true, false, c.keys...)
		if got := verdict(t, f.d.objs.CnilabFromContainer, c.pkt, ifS); got != c.want {
			t.Errorf("%s: verdict %d, want %d", c.name, got, c.want)
		}
	}
	// A port needs a protocol with ports.
	for _, k := range []PolicyKey{in(idS, 80, ProtoAny), in(idS, 80, ProtoICMP)} {
		if err := f.d.SetPolicy(localIP, []PolicyKey{k}); err == nil {
			t.Errorf("SetPolicy accepted %v", k)
		}
	}
}

// Egress, identities from the ipcache (longest prefix), world by default.
func TestPolicyIdentities(t *testing.T) {
	requireRoot(t)
	f := newPolicyFixture(t, Options{Mode: VXLAN, VXLANIfindex: 1})
	// S's egress: to D on port 80, to the remote /24 on any port, to world
	// on UDP only.
	f.set(srcIP, false, true, eg(idD, port, ProtoTCP), eg(idR, 0, 0), eg(IdentityWorld, 0, ProtoUDP))
	f.check(
		verdictCase{"egress to local pod allowed", fromContainer, tcpPkt(srcIP, localIP, 40000, port, flagSYN), ifS, actRedirect},
		verdictCase{"egress to local pod other port", fromContainer, tcpPkt(srcIP, localIP, 40000, port+1, flagSYN), ifS, actShot},
		verdictCase{"egress to remote prefix", fromContainer, tcpPkt(srcIP, remIP, 40000, 9999, flagSYN), ifS, actRedirect},
		verdictCase{"egress to world tcp", fromContainer, tcpPkt(srcIP, otherIP, 40000, port, flagSYN), ifS, actShot},
		verdictCase{"egress to world udp", fromContainer, udpPkt(srcIP, otherIP, 40000, 53), ifS, actOK},
		verdictCase{"egress to host not allowed", fromContainer, tcpPkt(srcIP, hostIP, 40000, port, flagSYN), ifS, actShot},
	)
	// D's ingress from world (no ipcache entry) and from the remote prefix.
	f.set(localIP, true, false, in(IdentityWorld, 0, ProtoTCP))
	f.check(
		// Not from a pod: the stack forwards it, to_container checks it.
		verdictCase{"world in (netdev)", fromNetdev, tcpPkt(otherIP, localIP, 40000, port, flagSYN), 7, actOK},
		verdictCase{"world in (overlay)", fromOverlay, tcpPkt(otherIP, localIP, 40001, port, flagSYN), 7, actOK},
		verdictCase{"remote pod in: not world", fromOverlay, tcpPkt(remIP, localIP, 40000, port, flagSYN), 7, actShot},
	)
	// A more specific prefix wins; deleting it restores the /24.
	host := netip.MustParsePrefix(remIP.String() + "/32")
	if err := f.d.UpsertIdentity(host, idX); err != nil {
		t.Fatal(err)
	}
	f.set(localIP, true, false, in(idR, 0, 0))
	f.check(verdictCase{"longest prefix", fromOverlay, tcpPkt(remIP, localIP, 40002, port, flagSYN), 7, actShot})
	if err := f.d.DeleteIdentity(host); err != nil {
		t.Fatal(err)
	}
	f.check(verdictCase{"/24 again", fromOverlay, tcpPkt(remIP, localIP, 40003, port, flagSYN), 7, actRedirect})
	if err := f.d.DeleteIdentity(netip.MustParsePrefix("10.244.1.0/24")); err != nil {
		t.Fatal(err)
	}
	f.check(verdictCase{"no identity: world", fromOverlay, tcpPkt(remIP, localIP, 40004, port, flagSYN), 7, actShot})
	f.set(localIP, true, false, in(IdentityWorld, port, ProtoTCP))
	f.check(verdictCase{"no identity: world allowed", fromOverlay, tcpPkt(remIP, localIP, 40005, port, flagSYN), 7, actRedirect})
}

// Replies pass by conntrack whatever the policy of their direction says.
func TestPolicyConntrackReply(t *testing.T) {
	requireRoot(t)
	f := newPolicyFixture(t, Options{Mode: Native})
	// S may open connections to D:80; D accepts them from S; S accepts
	// nothing, D may send nothing.
	f.set(srcIP, true, true, eg(idD, port, ProtoTCP))
	f.set(localIP, true, true, in(idS, port, ProtoTCP))
	f.check(
		verdictCase{"S->D SYN", fromContainer, tcpPkt(srcIP, localIP, 40000, port, flagSYN), ifS, actRedirect},
		verdictCase{"D->S SYN-ACK (reply)", fromContainer, tcpPkt(localIP, srcIP, port, 40000, flagSYN|flagACK), ifD, actRedirect},
		verdictCase{"S->D ACK (established)", fromContainer, tcpPkt(srcIP, localIP, 40000, port, flagACK), ifS, actRedirect},
		verdictCase{"D->S data (reply)", fromContainer, tcpPkt(localIP, srcIP, port, 40000, flagACK), ifD, actRedirect},
		verdictCase{"D->S new connection", fromContainer, tcpPkt(localIP, srcIP, port, 40001, flagSYN), ifD, actShot},
		verdictCase{"D->S other port pair", fromContainer, tcpPkt(localIP, srcIP, port, 40001, flagACK), ifD, actShot},
	)
	entries, err := f.d.Conntrack()
	if err != nil {
		t.Fatal(err)
	}
	want := ConntrackEntry{Proto: ProtoTCP, Src: netip.AddrPortFrom(srcIP, 40000), Dst: netip.AddrPortFrom(localIP, port), ReplySeen: true}
	if len(entries) != 1 || !sameConn(entries[0], want) {
		t.Fatalf("conntrack: %+v, want one %+v", entries, want)
	}
	if age := time.Since(entries[0].Created); age < -time.Second || age > time.Minute {
		t.Errorf("created %v ago", age)
	}
	// Forgotten: D's packets are a new flow, D's egress denies it.
	f.flush()
	f.check(verdictCase{"D->S after flush", fromContainer, tcpPkt(localIP, srcIP, port, 40000, flagACK), ifD, actShot})

	// Across nodes: the reply of S's connection to a remote pod comes back
	// through from_netdev, S's ingress allows nothing.
	f.set(srcIP, true, true, eg(idR, 0, 0))
	f.check(
		verdictCase{"S->remote", fromContainer, tcpPkt(srcIP, remIP, 40000, 443, flagSYN), ifS, actRedirect},
		verdictCase{"remote->S reply", fromNetdev, tcpPkt(remIP, srcIP, 443, 40000, flagSYN|flagACK), 7, actRedirect},
		verdictCase{"remote->S new", fromNetdev, tcpPkt(remIP, srcIP, 443, 40001, flagSYN), 7, actShot},
	)
	// The ingress check point tracks too: a connection from remote to D
	// allowed on this node lets D's replies out although D's egress
	// allows nothing.
	f.set(localIP, true, true, in(idR, port, ProtoTCP))
	f.check(
		verdictCase{"remote->D", fromNetdev, tcpPkt(remIP, localIP, 50000, port, flagSYN), 7, actRedirect},
		verdictCase{"D->remote reply", fromContainer, tcpPkt(localIP, remIP, port, 50000, flagSYN|flagACK), ifD, actRedirect},
		verdictCase{"D->remote new", fromContainer, tcpPkt(localIP, remIP, port, 50001, flagSYN), ifD, actShot},
	)

	// ICMP echo: the identifier keys the flow.
	f.set(srcIP, true, true, eg(idD, 0, 0))
	f.check(
		verdictCase{"S->D echo request", fromContainer, echoPkt(srcIP, localIP, 8, 77), ifS, actShot}, // D's ingress: TCP/80 only
	)
	f.set(localIP, true, true, in(idS, 0, 0))
	f.check(
		verdictCase{"S->D echo request", fromContainer, echoPkt(srcIP, localIP, 8, 77), ifS, actRedirect},
		verdictCase{"D->S echo reply", fromContainer, echoPkt(localIP, srcIP, 0, 77), ifD, actRedirect},
		verdictCase{"D->S echo reply, other id", fromContainer, echoPkt(localIP, srcIP, 0, 78), ifD, actShot},
		verdictCase{"D->S echo request", fromContainer, echoPkt(localIP, srcIP, 8, 77), ifD, actShot},
	)

	// ICMP errors about a tracked flow are related and pass; others are
	// checked as ICMP.
	f.set(localIP, true, true, in(idS, 5353, ProtoUDP))
	f.set(srcIP, true, true, eg(idD, 5353, ProtoUDP), eg(idR, 0, 0))
	dgram := udpPkt(srcIP, localIP, 40000, 5353)
	f.check(
		verdictCase{"S->D udp", fromContainer, dgram, ifS, actRedirect},
		verdictCase{"D->S port unreachable (related)", fromContainer, icmpErrorPkt(localIP, srcIP, 3, dgram), ifD, actRedirect},
		verdictCase{"D->S port unreachable, unknown flow", fromContainer, icmpErrorPkt(localIP, srcIP, 3, udpPkt(srcIP, localIP, 40000, 5354)), ifD, actShot},
		verdictCase{"S->remote udp", fromContainer, udpPkt(srcIP, remIP, 40000, 53), ifS, actRedirect},
		// A router is no pod: the stack forwards its error, to_container passes it.
		verdictCase{"router->S frag needed (related)", fromNetdev, icmpErrorPkt(otherIP, srcIP, 4, udpPkt(srcIP, remIP, 40000, 53)), 7, actOK},
	)
	if n, err := f.d.ConntrackCount(); err != nil || n == 0 {
		t.Errorf("ConntrackCount = %d, %v", n, err)
	}
	// Errors do not start connections.
	entries, _ = f.d.Conntrack()
	for _, e := range entries {
		if e.Proto == ProtoICMP && e.Src.Port() == 0 && e.Dst.Port() == 0 {
			t.Errorf("ICMP error tracked: %+v", e)
		}
	}
}

func sameConn(a, b ConntrackEntry) bool {
	a.Created, a.LastSeen, b.Created, b.LastSeen = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// TCP closing, reopening, and the GC's timeouts.
func TestConntrackLifecycle(t *testing.T) {
	requireRoot(t)
	f := newPolicyFixture(t, Options{Mode: Native, Conntrack: ConntrackTimeouts{TCP: 20 * time.Minute}})
	f.set(localIP, true, false, in(idS, port, ProtoTCP), in(idS, 53, ProtoUDP), in(idS, 0, ProtoICMP))
	f.check(
		verdictCase{"syn only", fromContainer, tcpPkt(srcIP, localIP, 40001, port, flagSYN), ifS, actRedirect},
		verdictCase{"established", fromContainer, tcpPkt(srcIP, localIP, 40002, port, flagSYN), ifS, actRedirect},
		verdictCase{"established reply", fromContainer, tcpPkt(localIP, srcIP, port, 40002, flagSYN|flagACK), ifD, actRedirect},
		verdictCase{"closing", fromContainer, tcpPkt(srcIP, localIP, 40003, port, flagSYN), ifS, actRedirect},
		verdictCase{"closing reply", fromContainer, tcpPkt(localIP, srcIP, port, 40003, flagACK), ifD, actRedirect},
		verdictCase{"closing FIN", fromContainer, tcpPkt(localIP, srcIP, port, 40003, flagFIN|flagACK), ifD, actRedirect},
		verdictCase{"udp", fromContainer, udpPkt(srcIP, localIP, 40004, 53), ifS, actRedirect},
		verdictCase{"icmp", fromContainer, echoPkt(srcIP, localIP, 8, 9), ifS, actRedirect},
	)
	state := func() map[uint16]ConntrackEntry {
		t.Helper()
		es, err := f.d.Conntrack()
		if err != nil {
			t.Fatal(err)
		}
		m := make(map[uint16]ConntrackEntry)
		for _, e := range es {
			m[e.Src.Port()] = e
		}
		return m
	}
	s := state()
	if len(s) != 5 || !s[40002].ReplySeen || s[40001].ReplySeen || !s[40003].FinReply || !s[40003].Closing() || s[40002].Closing() {
		t.Fatalf("conntrack state: %+v", s)
	}

	// A SYN on the closing connection's ports is a new connection: checked.
	f.set(localIP, true, false, in(idS, 53, ProtoUDP), in(idS, 0, ProtoICMP))
	f.check(
		verdictCase{"reopen denied", fromContainer, tcpPkt(srcIP, localIP, 40003, port, flagSYN), ifS, actShot},
		verdictCase{"closing connection still passes", fromContainer, tcpPkt(srcIP, localIP, 40003, port, flagACK), ifS, actRedirect},
		verdictCase{"established still passes", fromContainer, tcpPkt(srcIP, localIP, 40002, port, flagACK), ifS, actRedirect},
		verdictCase{"SYN retransmit on established passes", fromContainer, tcpPkt(srcIP, localIP, 40002, port, flagSYN), ifS, actRedirect},
	)
	f.set(localIP, true, false, in(idS, port, ProtoTCP))
	f.check(verdictCase{"reopen allowed", fromContainer, tcpPkt(srcIP, localIP, 40003, port, flagSYN), ifS, actRedirect})
	if e := state()[40003]; e.Closing() || e.ReplySeen {
		t.Fatalf("reopened entry not reset: %+v", e)
	}
	f.check(verdictCase{"RST", fromContainer, tcpPkt(localIP, srcIP, port, 40003, flagRST), ifD, actRedirect})
	if e := state()[40003]; !e.RST || !e.Closing() {
		t.Fatalf("RST not recorded: %+v", e)
	}

	gc := func(after time.Duration, wantLeft ...uint16) {
		t.Helper()
		before := len(state())
		n, err := f.d.GCConntrack(time.Now().Add(after))
		if err != nil {
			t.Fatal(err)
		}
		s := state()
		var left []uint16
		for _, p := range []uint16{40001, 40002, 40003, 40004, 9} {
			if _, ok := s[p]; ok {
				left = append(left, p)
			}
		}
		if fmt.Sprint(left) != fmt.Sprint(wantLeft) || n != before-len(s) {
			t.Fatalf("GC at +%v: deleted %d, left %v, want %v", after, n, left, wantLeft)
		}
	}
	gc(0, 40001, 40002, 40003, 40004, 9)
	gc(5*time.Second, 40001, 40002, 40003, 40004, 9)
	gc(11*time.Second, 40001, 40002, 40004, 9) // closing: 10s
	gc(61*time.Second, 40002)                  // SYN only, UDP, ICMP: 60s
	gc(19*time.Minute, 40002)                  // TCP: 20m here
	gc(21 * time.Minute)                       //
	if n, err := f.d.ConntrackCount(); err != nil || n != 0 {
		t.Fatalf("ConntrackCount = %d, %v", n, err)
	}
}

// Fragments: later fragments take the first one's ports.
func TestPolicyFragments(t *testing.T) {
	requireRoot(t)
	f := newPolicyFixture(t, Options{Mode: Native})
	f.set(localIP, true, false, in(idS, 53, ProtoUDP))
	first := func(dport uint16, id uint16) []byte {
		return ipv4(srcIP, localIP, ProtoUDP, udpHdr(40000, dport, 16), id, ipMF)
	}
	later := func(id uint16, last bool) []byte {
		frag := uint16(3) // offset 24 bytes
		if !last {
			frag |= ipMF
		}
		return ipv4(srcIP, localIP, ProtoUDP, make([]byte, 16), id, frag)
	}
	f.check(
		verdictCase{"first fragment, allowed port", fromContainer, first(53, 0x1001), ifS, actRedirect},
		verdictCase{"middle fragment", fromContainer, later(0x1001, false), ifS, actRedirect},
		verdictCase{"last fragment", fromContainer, later(0x1001, true), ifS, actRedirect},
		verdictCase{"first fragment, denied port", fromContainer, first(54, 0x1002), ifS, actShot},
		verdictCase{"its later fragment", fromContainer, later(0x1002, true), ifS, actShot},
		verdictCase{"later fragment without first", fromContainer, later(0x1003, true), ifS, actShot},
	)
	// Unenforced too: a fragment that cannot be classified is dropped.
	f.set(localIP, false, false)
	f.check(verdictCase{"without first, not enforced", fromContainer, later(0x1004, true), ifS, actShot})
}

// Sources: a pod sends from its own address only; the node's own traffic
// is always allowed into pods; malformed L4 headers are dropped.
func TestPolicySourcesAndHost(t *testing.T) {
	requireRoot(t)
	f := newPolicyFixture(t, Options{Mode: Native})
	f.set(localIP, true, true) // D: deny all, both ways
	f.check(
		verdictCase{"S spoofing D's address", fromContainer, udpPkt(localIP, otherIP, 1, 2), ifS, actShot},
		verdictCase{"S spoofing an unknown address", fromContainer, udpPkt(otherIP, localIP, 1, 2), ifS, actShot},
		verdictCase{"S from its address", fromContainer, udpPkt(srcIP, otherIP, 1, 2), ifS, actOK},
		verdictCase{"unregistered veth, unknown address", fromContainer, udpPkt(otherIP, remIP, 1, 2), 4242, actRedirect},
		verdictCase{"D from another veth", fromContainer, udpPkt(localIP, otherIP, 1, 2), 4242, actShot},
		// The node's stack (no ingress device) into D: allowed, tracked.
		verdictCase{"host -> D", toContainer, tcpPkt(hostIP, localIP, 33000, 8080, flagSYN), 0, actOK},
		verdictCase{"D -> host reply", fromContainer, tcpPkt(localIP, hostIP, 8080, 33000, flagSYN|flagACK), ifD, actOK},
		verdictCase{"D -> host new", fromContainer, tcpPkt(localIP, hostIP, 8080, 33001, flagSYN), ifD, actShot},
		// Routed by the kernel from a device: the source's identity.
		verdictCase{"world -> D routed", toContainer, tcpPkt(otherIP, localIP, 33000, 8080, flagSYN), 7, actShot},
		verdictCase{"host address -> D routed", toContainer, tcpPkt(hostIP, localIP, 33002, 8080, flagSYN), 7, actShot},
		verdictCase{"to_container: not an endpoint", toContainer, tcpPkt(otherIP, remIP, 33000, 8080, flagSYN), 7, actOK},
		verdictCase{"to_container: ARP", toContainer, arp(), 0, actOK},
		// Truncated L4 header.
		verdictCase{"truncated TCP", fromContainer, ipv4(srcIP, localIP, ProtoTCP, tcpHdr(1, 2, flagSYN)[:10], 1, 0), ifS, actShot},
		verdictCase{"truncated UDP to endpoint", fromNetdev, ipv4(remIP, localIP, ProtoUDP, []byte{1, 2}, 1, 0), 7, actShot},
		verdictCase{"truncated ICMP", toContainer, ipv4(remIP, localIP, ProtoICMP, []byte{8, 0, 0}, 1, 0), 7, actShot},
		verdictCase{"other protocol, no ports", fromNetdev, ipv4(remIP, localIP, 47, []byte{1, 2, 3, 4}, 1, 0), 7, actShot},
	)
	f.set(localIP, true, true, in(idR, 0, 47))
	f.check(verdictCase{"other protocol allowed", fromNetdev, ipv4(remIP, localIP, 47, []byte{1, 2, 3, 4}, 1, 0), 7, actRedirect})
	// Removing S's endpoint also forgets its veth.
	if err := f.d.DeleteEndpoint(srcIP); err != nil {
		t.Fatal(err)
	}
	f.check(verdictCase{"unregistered veth again", fromContainer, udpPkt(otherIP, remIP, 1, 2), ifS, actRedirect})
}
