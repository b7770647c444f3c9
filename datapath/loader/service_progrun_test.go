package loader

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
)

// markedCtx is skbCtx with skb->mark (struct __sk_buff: len, pkt_type,
// mark, ...).
type markedCtx struct {
	_              [2]uint32
	Mark           uint32
	_              [6]uint32
	IngressIfindex uint32
}

// markService is MARK_SERVICE (bpf/lib/stack.h).
const markService = 0x00200000

// runMarked runs prog on pkt with skb->mark set to mark and returns the
// verdict and the mark the program left.
func runMarked(t *testing.T, prog *ebpf.Program, pkt []byte, ingressIfindex, mark uint32) (uint32, uint32) {
	t.Helper()
	// The kernel writes the whole struct __sk_buff back.
	var out [64]uint32
	ret, err := prog.Run(&ebpf.RunOptions{
		Data:       pkt,
		DataOut:    make([]byte, len(pkt)+256),
		Context:    markedCtx{Mark: mark, IngressIfindex: ingressIfindex},
		ContextOut: &out,
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return ret, out[2] // mark
}

// A pod's connection to a Service address: handed to the stack untouched
// and marked; its policy checked where the translated packet leaves the
// stack (to_container for a local backend, to_netdev for a remote one);
// the backend's replies handed back to the stack, which reverses the DNAT.
func TestServicePolicyAfterTranslation(t *testing.T) {
	requireRoot(t)
	f := newPolicyFixture(t, Options{Mode: Native, ServiceCIDR: netip.MustParsePrefix("10.96.0.0/16")})
	vip := netip.MustParseAddr("10.96.0.10")
	d := f.d.objs

	// S's egress allows only the remote pods' identity on TCP 80.
	f.set(srcIP, false, true, eg(idR, port, ProtoTCP))
	if ret, mark := runMarked(t, d.CnilabFromContainer, tcpPkt(srcIP, vip, 40000, port, flagSYN), ifS, 0); ret != actOK || mark&markService == 0 {
		t.Fatalf("S -> ClusterIP: verdict %d mark %#x, want %d (to the stack) and MARK_SERVICE", ret, mark, actOK)
	}
	// kube-proxy picked D, on this node: S's egress does not allow D.
	if ret, _ := runMarked(t, d.CnilabToContainer, tcpPkt(srcIP, localIP, 40000, port, flagSYN), ifS, markService); ret != actShot {
		t.Errorf("S -> D after DNAT: verdict %d, want %d (S's egress denies D)", ret, actShot)
	}
	// kube-proxy picked a remote pod: allowed on 80, not on 81.
	ret, mark := runMarked(t, d.CnilabToNetdev, tcpPkt(srcIP, remIP, 40001, port, flagSYN), ifS, markService)
	if ret != actOK || mark&markService != 0 {
		t.Errorf("S -> remote after DNAT: verdict %d mark %#x, want %d and the mark cleared", ret, mark, actOK)
	}
	if ret, _ := runMarked(t, d.CnilabToNetdev, tcpPkt(srcIP, remIP, 40002, port+1, flagSYN), ifS, markService); ret != actShot {
		t.Errorf("S -> remote:81 after DNAT: verdict %d, want %d", ret, actShot)
	}
	// The remote backend's reply goes to the stack, not past it.
	if ret, _ := runMarked(t, d.CnilabFromNetdev, tcpPkt(remIP, srcIP, port, 40001, flagSYN|flagACK), 7, 0); ret != actOK {
		t.Errorf("remote -> S reply of a translated connection: verdict %d, want %d (to the stack)", ret, actOK)
	}
	// Unmarked, the same underlay traffic is not checked there.
	if ret, _ := runMarked(t, d.CnilabToNetdev, tcpPkt(srcIP, remIP, 40003, port+1, flagSYN), ifS, 0); ret != actOK {
		t.Errorf("unmarked S -> remote at to_netdev: verdict %d, want %d", ret, actOK)
	}

	// Now S may reach D: the local backend's reply goes to the stack too.
	f.flush()
	f.set(srcIP, false, true, eg(idD, port, ProtoTCP))
	if ret, _ := runMarked(t, d.CnilabToContainer, tcpPkt(srcIP, localIP, 40004, port, flagSYN), ifS, markService); ret != actOK {
		t.Fatalf("S -> D after DNAT, allowed: verdict %d, want %d", ret, actOK)
	}
	if ret, _ := runMarked(t, d.CnilabFromContainer, tcpPkt(localIP, srcIP, port, 40004, flagSYN|flagACK), ifD, 0); ret != actOK {
		t.Errorf("D -> S reply of a translated connection: verdict %d, want %d (to the stack, not redirected)", ret, actOK)
	}
	// A plain S -> D connection is still redirected both ways.
	if ret, _ := runMarked(t, d.CnilabFromContainer, tcpPkt(srcIP, localIP, 40005, port, flagSYN), ifS, 0); ret != actRedirect {
		t.Errorf("S -> D: verdict %d, want %d", ret, actRedirect)
	}
}

func TestPrefixNBO(t *testing.T) {
	for _, tc := range []struct {
		prefix        string
		network, mask [4]byte
	}{
		{"10.96.0.0/12", [4]byte{10, 96, 0, 0}, [4]byte{255, 240, 0, 0}},
		{"10.96.7.9/16", [4]byte{10, 96, 0, 0}, [4]byte{255, 255, 0, 0}},
		{"172.20.0.0/20", [4]byte{172, 20, 0, 0}, [4]byte{255, 255, 240, 0}},
	} {
		n, m := prefixNBO(netip.MustParsePrefix(tc.prefix))
		var gotN, gotM [4]byte
		binary.NativeEndian.PutUint32(gotN[:], n)
		binary.NativeEndian.PutUint32(gotM[:], m)
		if gotN != tc.network || gotM != tc.mask {
			t.Errorf("%s: network %v mask %v, want %v %v", tc.prefix, gotN, gotM, tc.network, tc.mask)
		}
	}
	if n, m := prefixNBO(netip.Prefix{}); n != 0 || m != 0 {
		t.Errorf("no prefix: %#x/%#x, want 0/0 (none)", n, m)
	}
}
