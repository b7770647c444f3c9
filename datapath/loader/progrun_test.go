package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// tc verdicts (linux/pkt_cls.h).
const (
	actOK       = 0
	actShot     = 2
	actRedirect = 7
)

var (
	podMAC  = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 0x01}
	hostMAC = net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 0x01}
	srcMAC  = net.HardwareAddr{0x02, 0xcc, 0, 0, 0, 0x02}
	dstMAC  = net.HardwareAddr{0x02, 0xdd, 0, 0, 0, 0x02}
	localIP = netip.MustParseAddr("10.244.0.10")
	otherIP = netip.MustParseAddr("10.244.0.99")
	remIP   = netip.MustParseAddr("10.244.1.5")
	srcIP   = netip.MustParseAddr("10.244.0.20")
)

func csum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// udp4 builds Ethernet/IPv4/UDP with a valid IP header checksum.
func udp4(src, dst netip.Addr, ttl uint8) []byte {
	p := make([]byte, 14+20+8+8)
	copy(p[0:6], dstMAC)
	copy(p[6:12], srcMAC)
	binary.BigEndian.PutUint16(p[12:], 0x0800)
	ip := p[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 36)
	ip[8], ip[9] = ttl, 17
	s, d := src.As4(), dst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], csum(ip))
	udp := p[34:42]
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], 80)
	binary.BigEndian.PutUint16(udp[4:], 16)
	copy(p[42:], "cnilab!!")
	return p
}

func arp() []byte {
	p := make([]byte, 14+28)
	copy(p[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(p[6:12], srcMAC)
	binary.BigEndian.PutUint16(p[12:], 0x0806)
	return p
}

type runCase struct {
	name string
	prog func(*Datapath) *ebpf.Program
	pkt  []byte
	want uint32
	// rewritten: the output must be the input routed to the local pod
	// (MACs rewritten, TTL decremented, checksum valid); otherwise unchanged.
	rewritten bool
	// routed: the output must be the input with the TTL decremented (and
	// the checksum valid), sent on to another node.
	routed bool
	// short: an IPv4 frame shorter than Ethernet+IPv4 headers. Newer kernels
	// refuse to test-run those (EINVAL before the program runs).
	short bool
}

func runCases(t *testing.T, d *Datapath, cases []runCase) {
	t.Helper()
	for _, c := range cases {
		ret, out, err := c.prog(d).Test(c.pkt)
		if c.short && errors.Is(err, unix.EINVAL) {
			t.Logf("%s: this kernel's BPF_PROG_TEST_RUN refuses a %d-byte IPv4 frame", c.name, len(c.pkt))
			continue
		}
		if err != nil {
			t.Errorf("%s: run: %v", c.name, err)
			continue
		}
		if ret != c.want {
			t.Errorf("%s: verdict %d, want %d", c.name, ret, c.want)
		}
		out = out[:len(c.pkt)]
		want := append([]byte(nil), c.pkt...)
		if c.rewritten || c.routed {
			if c.rewritten {
				copy(want[0:6], podMAC)
				copy(want[6:12], hostMAC)
			}
			want[22]--
			binary.BigEndian.PutUint16(want[24:], 0)
			binary.BigEndian.PutUint16(want[24:], csum(want[14:34]))
			if csum(out[14:34]) != 0 {
				t.Errorf("%s: bad IP checksum in output % x", c.name, out[14:34])
			}
		}
		if !bytes.Equal(out, want) {
			t.Errorf("%s: output\n% x\nwant\n% x", c.name, out, want)
		}
	}
}

func fromContainer(d *Datapath) *ebpf.Program { return d.objs.CnilabFromContainer }
func toOverlay(d *Datapath) *ebpf.Program     { return d.objs.CnilabToOverlay }
func fromOverlay(d *Datapath) *ebpf.Program   { return d.objs.CnilabFromOverlay }
func fromNetdev(d *Datapath) *ebpf.Program    { return d.objs.CnilabFromNetdev }

func loadWithEntries(t testing.TB, opts Options) *Datapath {
	t.Helper()
	opts.PinPath = bpffsDir(t)
	if opts.Mode == Native && opts.UnderlayIfindex == 0 {
		opts.UnderlayIfindex = 1 // lo: test runs only report the redirect
	}
	d := load(t, opts)
	if err := d.UpsertEndpoint(localIP, EndpointInfo{Ifindex: 1000, PodMAC: podMAC, HostMAC: hostMAC}); err != nil {
		t.Fatal(err)
	}
	if err := d.UpsertRemote(netip.MustParsePrefix("10.244.1.0/24"), netip.MustParseAddr("172.30.0.12")); err != nil {
		t.Fatal(err)
	}
	return d
}

// BPF_PROG_TEST_RUN on crafted packets: verdicts and output packets.
func TestProgRunNative(t *testing.T) {
	requireRoot(t)
	for _, noPeer := range []bool{false, true} {
		d := loadWithEntries(t, Options{Mode: Native, NoRedirectPeer: noPeer})
		truncated := udp4(srcIP, localIP, 64)[:14+10]
		notV4 := udp4(srcIP, localIP, 64)
		notV4[14] = 0x65 // version 6 behind an IPv4 ethertype
		shortIHL := udp4(srcIP, localIP, 64)
		shortIHL[14] = 0x44
		runCases(t, d, []runCase{
			{"from_container endpoint hit", fromContainer, udp4(srcIP, localIP, 64), actRedirect, true, false, false},
			{"from_container miss", fromContainer, udp4(srcIP, otherIP, 64), actOK, false, false, false},
			{"from_container remote in native mode", fromContainer, udp4(srcIP, remIP, 64), actRedirect, false, true, false},
			{"from_container ARP", fromContainer, arp(), actOK, false, false, false},
			{"from_container truncated", fromContainer, truncated, actOK, false, false, true},
			{"from_container ethernet only", fromContainer, truncated[:14], actOK, false, false, true},
			{"from_container not version 4", fromContainer, notV4, actOK, false, false, false},
			{"from_container ihl < 5", fromContainer, shortIHL, actOK, false, false, false},
			{"from_container ttl 1 left to the stack", fromContainer, udp4(srcIP, localIP, 1), actOK, false, false, false},
			{"from_netdev endpoint hit", fromNetdev, udp4(remIP, localIP, 64), actRedirect, true, false, false},
			{"from_netdev miss", fromNetdev, udp4(remIP, otherIP, 64), actOK, false, false, false},
			{"from_netdev ARP", fromNetdev, arp(), actOK, false, false, false},
			{"from_netdev truncated", fromNetdev, truncated, actOK, false, false, true},
		})
	}
}

func TestProgRunVXLAN(t *testing.T) {
	requireRoot(t)
	d := loadWithEntries(t, Options{Mode: VXLAN, VXLANIfindex: 1})
	runCases(t, d, []runCase{
		{"from_container endpoint hit", fromContainer, udp4(srcIP, localIP, 64), actRedirect, true, false, false},
		{"from_container remote hit", fromContainer, udp4(srcIP, remIP, 64), actRedirect, false, false, false},
		{"from_container miss", fromContainer, udp4(srcIP, otherIP, 64), actOK, false, false, false},
		{"from_container ARP", fromContainer, arp(), actOK, false, false, false},
		{"to_overlay remote hit", toOverlay, udp4(srcIP, remIP, 64), actOK, false, false, false},
		{"to_overlay miss", toOverlay, udp4(srcIP, otherIP, 64), actShot, false, false, false},
		{"to_overlay ARP", toOverlay, arp(), actShot, false, false, false},
		{"to_overlay truncated", toOverlay, udp4(srcIP, remIP, 64)[:20], actShot, false, false, true},
		{"from_overlay endpoint hit", fromOverlay, udp4(remIP, localIP, 64), actRedirect, true, false, false},
		{"from_overlay miss", fromOverlay, udp4(remIP, otherIP, 64), actOK, false, false, false},
		{"from_overlay ARP", fromOverlay, arp(), actOK, false, false, false},
		{"from_overlay truncated", fromOverlay, udp4(remIP, localIP, 64)[:20], actOK, false, false, true},
	})
	if err := d.DeleteRemote(netip.MustParsePrefix("10.244.1.0/24")); err != nil {
		t.Fatal(err)
	}
	runCases(t, d, []runCase{
		{"from_container remote deleted", fromContainer, udp4(srcIP, remIP, 64), actOK, false, false, false},
		{"to_overlay remote deleted", toOverlay, udp4(srcIP, remIP, 64), actShot, false, false, false},
	})
}
