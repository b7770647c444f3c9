package differential

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cnilab/cnilab/datapath/loader"
	dpolicy "github.com/cnilab/cnilab/datapath/policy"
	oracle "github.com/cnilab/cnilab/e2e/policy"
)

// The world of every case: one node, namespaces x, y, z, six pods on it.
const nodeName = "node-1"

var (
	gatewayIP = netip.MustParseAddr("10.244.0.1")
	nodeIP    = netip.MustParseAddr("172.30.0.11")
	podMAC    = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	hostMAC   = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	labelKeys = []string{"app", "tier"}
	labelVals = []string{"a", "b", "c"}
)

type world struct {
	namespaces []oracle.Namespace
	pods       []oracle.Pod
	policies   []networkingv1.NetworkPolicy
}

// randomWorld draws namespaces with labels, six pods with labels, and up to
// four policies mixing every selector, peer and port form.
func randomWorld(r *rand.Rand) world {
	var w world
	for _, ns := range []string{"x", "y", "z"} {
		l := map[string]string{"kubernetes.io/metadata.name": ns}
		if r.IntN(2) == 0 {
			l["team"] = labelVals[r.IntN(2)]
		}
		w.namespaces = append(w.namespaces, oracle.Namespace{Name: ns, Labels: l})
	}
	for i := range 6 {
		ns := w.namespaces[r.IntN(3)].Name
		l := map[string]string{}
		for _, k := range labelKeys {
			if r.IntN(3) > 0 {
				l[k] = labelVals[r.IntN(len(labelVals))]
			}
		}
		w.pods = append(w.pods, oracle.Pod{Namespace: ns, Name: fmt.Sprintf("p%d", i), Labels: l,
			IP: fmt.Sprintf("10.244.0.%d", 10+i), Ports: oracle.StandardContainerPorts()})
	}
	for i := range r.IntN(5) {
		w.policies = append(w.policies, randomPolicy(r, fmt.Sprintf("np%d", i), w.namespaces[r.IntN(3)].Name))
	}
	return w
}

func randomSelector(r *rand.Rand) *metav1.LabelSelector {
	s := &metav1.LabelSelector{}
	switch r.IntN(4) {
	case 0: // empty: everything
	case 1:
		s.MatchLabels = map[string]string{labelKeys[r.IntN(2)]: labelVals[r.IntN(3)]}
	case 2:
		ops := []metav1.LabelSelectorOperator{metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist}
		op := ops[r.IntN(len(ops))]
		req := metav1.LabelSelectorRequirement{Key: labelKeys[r.IntN(2)], Operator: op}
		if op == metav1.LabelSelectorOpIn || op == metav1.LabelSelectorOpNotIn {
			req.Values = []string{labelVals[r.IntN(3)], labelVals[r.IntN(3)]}
		}
		s.MatchExpressions = []metav1.LabelSelectorRequirement{req}
	default:
		s.MatchLabels = map[string]string{labelKeys[0]: labelVals[r.IntN(3)], labelKeys[1]: labelVals[r.IntN(3)]}
	}
	return s
}

func randomNamespaceSelector(r *rand.Rand) *metav1.LabelSelector {
	switch r.IntN(3) {
	case 0:
		return &metav1.LabelSelector{}
	case 1:
		return &metav1.LabelSelector{MatchLabels: map[string]string{"team": labelVals[r.IntN(2)]}}
	}
	return &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": []string{"x", "y", "z"}[r.IntN(3)]}}
}

func randomPeers(r *rand.Rand) []networkingv1.NetworkPolicyPeer {
	var out []networkingv1.NetworkPolicyPeer
	for range r.IntN(3) {
		var p networkingv1.NetworkPolicyPeer
		switch r.IntN(4) {
		case 0:
			p.PodSelector = randomSelector(r)
		case 1:
			p.NamespaceSelector = randomNamespaceSelector(r)
		case 2:
			p.PodSelector, p.NamespaceSelector = randomSelector(r), randomNamespaceSelector(r)
		default:
			b := &networkingv1.IPBlock{CIDR: []string{"10.244.0.0/24", "10.244.0.8/29", "10.244.0.12/30", "0.0.0.0/0"}[r.IntN(4)]}
			if r.IntN(2) == 0 {
				b.Except = []string{fmt.Sprintf("10.244.0.%d/32", 10+r.IntN(6))}
				if !strings.HasPrefix(b.CIDR, "10.244.0.0/24") && b.CIDR != "0.0.0.0/0" {
					b.Except = nil // except must lie inside the cidr
				}
			}
			p.IPBlock = b
		}
		out = append(out, p)
	}
	return out
}

func randomPorts(r *rand.Rand) []networkingv1.NetworkPolicyPort {
	var out []networkingv1.NetworkPolicyPort
	for range r.IntN(3) {
		proto := []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP}[r.IntN(2)]
		p := networkingv1.NetworkPolicyPort{}
		if r.IntN(4) > 0 {
			p.Protocol = &proto
		} else {
			proto = corev1.ProtocolTCP // the default
		}
		switch r.IntN(4) {
		case 0: // every port of the protocol
		case 1:
			v := intstr.FromInt32(int32(80 + r.IntN(2)))
			p.Port = &v
		case 2:
			v := intstr.FromString(oracle.PortName(int32(80+r.IntN(2)), proto))
			p.Port = &v
		default:
			v := intstr.FromInt32(79 + int32(r.IntN(2)))
			end := v.IntVal + int32(r.IntN(3))
			p.Port, p.EndPort = &v, &end
		}
		out = append(out, p)
	}
	return out
}

func randomPolicy(r *rand.Rand, name, ns string) networkingv1.NetworkPolicy {
	np := networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	np.Spec.PodSelector = *randomSelector(r)
	switch r.IntN(4) {
	case 0: // policyTypes defaulted from the rules
	case 1:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case 2:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	default:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	}
	for range r.IntN(3) {
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: randomPeers(r), Ports: randomPorts(r)})
	}
	for range r.IntN(3) {
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: randomPeers(r), Ports: randomPorts(r)})
	}
	return np
}

// state is the world as the agent hands it to the compiler.
func (w world) state() dpolicy.State {
	var s dpolicy.State
	for _, ns := range w.namespaces {
		s.Namespaces = append(s.Namespaces, dpolicy.Namespace{Name: ns.Name, Labels: ns.Labels})
	}
	for _, p := range w.pods {
		s.Pods = append(s.Pods, dpolicy.Pod{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels,
			IP: netip.MustParseAddr(p.IP), Node: nodeName, Ports: p.Ports})
	}
	s.Nodes = []dpolicy.Node{{Name: nodeName, IPs: []netip.Addr{gatewayIP, nodeIP}}}
	s.Policies = w.policies
	return s
}

func (w world) model() oracle.Model {
	return oracle.Model{Namespaces: w.namespaces, Pods: w.pods}
}

// writer writes compiler deltas into the loaded datapath, as the agent does.
type writer struct{ d *loader.Datapath }

func (w writer) AddKey(k dpolicy.PolicyKey) error {
	return w.d.AddPolicyKey(loader.PolicyKey{Endpoint: k.Endpoint, Identity: k.Identity, Port: k.Port, Proto: k.Proto, Egress: k.Egress})
}
func (w writer) RemoveKey(k dpolicy.PolicyKey) error {
	return w.d.RemovePolicyKey(loader.PolicyKey{Endpoint: k.Endpoint, Identity: k.Identity, Port: k.Port, Proto: k.Proto, Egress: k.Egress})
}
func (w writer) UpsertIPCache(p netip.Prefix, id uint32) error {
	if !p.Addr().Is4() {
		return nil
	}
	return w.d.UpsertIdentity(p, id)
}
func (w writer) DeleteIPCache(p netip.Prefix) error {
	if !p.Addr().Is4() {
		return nil
	}
	return w.d.DeleteIdentity(p)
}
func (w writer) SetEnforcement(ip netip.Addr, egress, on bool) error {
	eps, err := w.d.Endpoints()
	if err != nil {
		return err
	}
	e := eps[ip]
	if egress {
		e.PolicyEgress = on
	} else {
		e.PolicyIngress = on
	}
	return w.d.SetEndpointPolicy(ip, e.PolicyIngress, e.PolicyEgress)
}

// packet is an Ethernet/IPv4/TCP SYN or UDP datagram (checksums of L4 are
// not computed: the programs do not look at them).
func packet(src, dst netip.Addr, proto corev1.Protocol, sport, dport uint16) []byte {
	var l4 []byte
	var ipProto byte
	if proto == corev1.ProtocolUDP {
		l4, ipProto = make([]byte, 16), 17
		binary.BigEndian.PutUint16(l4[4:], 16)
	} else {
		l4, ipProto = make([]byte, 20), 6
		l4[12], l4[13] = 5<<4, 0x02 // SYN
		binary.BigEndian.PutUint16(l4[14:], 65535)
	}
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	p := make([]byte, 34+len(l4))
	copy(p[0:6], hostMAC)
	copy(p[6:12], podMAC)
	binary.BigEndian.PutUint16(p[12:], 0x0800)
	ip := p[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, ipProto
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
	s, d := src.As4(), dst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	copy(p[34:], l4)
	return p
}

// fixture is one loaded datapath with the six pods' endpoints.
type fixture struct {
	d       *loader.Datapath
	alloc   *dpolicy.Allocator
	applied dpolicy.Result
	sport   uint16
	// allowed and denied count the verdicts compared, so a run can show it
	// compared both kinds.
	allowed, denied int
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads the eBPF datapath and runs packets through it with BPF_PROG_TEST_RUN")
	}
	dir := filepath.Join(t.TempDir(), "bpf")
	d, err := loader.Load(loader.Options{PinPath: dir, Mode: loader.Native, NoEvents: true})
	if err != nil {
		t.Fatalf("load the datapath: %v", err)
	}
	t.Cleanup(func() {
		d.Close()
		_ = loader.Unpin(dir)
		_ = unix.Unmount(dir, unix.MNT_DETACH)
	})
	for i := range 6 {
		ip := netip.MustParseAddr(fmt.Sprintf("10.244.0.%d", 10+i))
		if err := d.UpsertEndpoint(ip, loader.EndpointInfo{Ifindex: 2000 + i, PodMAC: podMAC, HostMAC: hostMAC}); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{d: d, alloc: dpolicy.NewAllocator(), sport: 20000}
}

// apply compiles w and writes the difference to what the datapath holds.
func (f *fixture) apply(w world) error {
	res, err := dpolicy.Compile(w.state(), dpolicy.Local{NodeName: nodeName}, f.alloc)
	if err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	if err := dpolicy.Diff(f.applied, res).Apply(writer{f.d}); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	f.applied = res
	return nil
}

// verdict runs a new connection's first packet from pod i to pod j.
func (f *fixture) verdict(from, to int, proto corev1.Protocol, port uint16) (bool, error) {
	if err := f.d.ConntrackFlush(); err != nil {
		return false, err
	}
	f.sport++
	if f.sport < 20000 {
		f.sport = 20000
	}
	src := netip.MustParseAddr(fmt.Sprintf("10.244.0.%d", 10+from))
	dst := netip.MustParseAddr(fmt.Sprintf("10.244.0.%d", 10+to))
	act, err := f.d.RunPacket(loader.HookFromContainer, packet(src, dst, proto, f.sport, port), uint32(2000+from))
	switch {
	case err != nil:
		return false, err
	case act == loader.ActionRedirect:
		return true, nil
	case act == loader.ActionShot:
		return false, nil
	}
	return false, fmt.Errorf("action %d for a packet between two local pods", act)
}

// check runs every packet of the world and reports the first disagreement
// with the oracle, with the policies and the oracle's reasoning.
func (f *fixture) check(t *testing.T, w world, r *rand.Rand) {
	t.Helper()
	if err := f.apply(w); err != nil {
		t.Fatalf("%v\npolicies: %s", err, describe(w))
	}
	m := w.model()
	for range 24 {
		from, to := r.IntN(6), r.IntN(6)
		if from == to {
			continue // loopback never reaches the datapath
		}
		proto := []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP}[r.IntN(2)]
		port := uint16(79 + r.IntN(4))
		got, err := f.verdict(from, to, proto, port)
		if err != nil {
			t.Fatal(err)
		}
		want := oracle.Allowed(w.policies, m, oracle.PodTraffic(w.pods[from], w.pods[to], int32(port), proto))
		if got {
			f.allowed++
		} else {
			f.denied++
		}
		if got != want.Allowed {
			t.Fatalf("%s → %s %s/%d: datapath allowed=%v, oracle allowed=%v (egress %+v, ingress %+v)\npods: %s\npolicies: %s",
				w.pods[from].Key(), w.pods[to].Key(), proto, port, got, want.Allowed, want.Egress, want.Ingress, describePods(w), describe(w))
		}
	}
}

func describePods(w world) string {
	var b strings.Builder
	for _, p := range w.pods {
		fmt.Fprintf(&b, "\n  %s %s %v", p.Key(), p.IP, p.Labels)
	}
	for _, n := range w.namespaces {
		fmt.Fprintf(&b, "\n  namespace %s %v", n.Name, n.Labels)
	}
	return b.String()
}

func describe(w world) string {
	var b strings.Builder
	for _, np := range w.policies {
		fmt.Fprintf(&b, "\n  %s/%s %s", np.Namespace, np.Name, np.Spec.String())
	}
	return b.String()
}

// FuzzPolicyDifferential draws a world from the fuzzer's seed, applies it
// to a loaded datapath as the agent would (compile, diff against the last
// world, write), and compares 24 random connections' first packets with the
// oracle. The datapath is shared by every input, so updates from one world
// to the next are exercised too.
//
//	go test -run '^$' -fuzz FuzzPolicyDifferential ./internal/differential/
func FuzzPolicyDifferential(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42, 1000, 31337} {
		f.Add(s)
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, seed uint64) {
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		fx.check(t, randomWorld(r), r)
	})
}

// TestPolicyDifferential runs 300 worlds in sequence (no fuzzing engine).
func TestPolicyDifferential(t *testing.T) {
	fx := newFixture(t)
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		fx.check(t, randomWorld(r), r)
	}
	t.Logf("%d allowed and %d denied connections agreed with the oracle", fx.allowed, fx.denied)
	if fx.allowed < 100 || fx.denied < 100 {
		t.Errorf("only %d allowed and %d denied verdicts: the worlds do not exercise both", fx.allowed, fx.denied)
	}
}
