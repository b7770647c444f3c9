package policy

import (
	"fmt"
	"net/netip"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// benchState is 100 pods (10 namespaces of 10, half on node-1) and n
// policies mixing every kind of peer and port.
func benchState(n int) State {
	var s State
	for i := range 10 {
		ns := fmt.Sprintf("ns%d", i)
		s.Namespaces = append(s.Namespaces, Namespace{Name: ns, Labels: map[string]string{"team": fmt.Sprint(i % 3), "kubernetes.io/metadata.name": ns}})
		for j := range 10 {
			node := "node-1"
			if j%2 == 1 {
				node = "node-2"
			}
			s.Pods = append(s.Pods, Pod{
				Namespace: ns, Name: fmt.Sprintf("p%d", j),
				Labels: map[string]string{"app": fmt.Sprint(j % 5), "tier": fmt.Sprint(j % 2)},
				IP:     netip.AddrFrom4([4]byte{10, 244, byte(i), byte(j + 10)}), Node: node, Ports: standardPorts(),
			})
		}
	}
	s.Nodes = []Node{{Name: "node-1", IPs: []netip.Addr{node1}}, {Name: "node-2", IPs: []netip.Addr{node2}}}
	for i := range n {
		ns := fmt.Sprintf("ns%d", i%10)
		var np networkingv1.NetworkPolicy
		switch i % 4 {
		case 0:
			np = netpol(ns, fmt.Sprint("p", i), match("app", fmt.Sprint(i%5)),
				ingress(peers(nsPodSel(match("team", fmt.Sprint(i%3)), match("tier", "1"))).on(numPort(TCP, int32(8000+i%100)), named(UDP, "serve-81-udp"))))
		case 1:
			np = netpol(ns, fmt.Sprint("p", i), match("tier", fmt.Sprint(i%2)),
				egress(peers(podSel(match("app", fmt.Sprint(i%5)))).on(named(TCP, "serve-80-tcp"), portRange(UDP, 5000, 5009))))
		case 2:
			np = netpol(ns, fmt.Sprint("p", i), expr("app", metav1.LabelSelectorOpIn, "1", "2"),
				ingress(peers(cidr(fmt.Sprintf("10.%d.0.0/16", i%200), fmt.Sprintf("10.%d.%d.0/24", i%200, i%7)))),
				egress(peers(cidr("10.244.0.0/16", fmt.Sprintf("10.244.%d.0/24", i%10))).on(numPort(SCTP, 80))))
		default:
			np = netpol(ns, fmt.Sprint("p", i), all(), ingress(peers(nsSel(expr("team", metav1.LabelSelectorOpNotIn, "0")))))
		}
		s.Policies = append(s.Policies, np)
	}
	return s
}

// BenchmarkCompile compiles 10, 100 and 1,000 policies over 100 pods for
// one node with a warm allocator, as the agent does on every change (make
// bench measures the same counts on a live lab).
func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			s := benchState(n)
			a := NewAllocator()
			r, err := Compile(s, Local{NodeName: "node-1"}, a)
			if err != nil {
				b.Fatal(err)
			}
			keys := 0
			for _, ep := range r.Endpoints {
				keys += len(ep.Keys)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile(s, Local{NodeName: "node-1"}, a); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(r.IPCache)), "ipcache")
			b.ReportMetric(float64(keys), "keys")
		})
	}
}

// BenchmarkDiff diffs two compilations that differ by one pod label.
func BenchmarkDiff(b *testing.B) {
	s := benchState(1000)
	a := NewAllocator()
	r1, _ := Compile(s, Local{NodeName: "node-1"}, a)
	s.Pods[0].Labels = map[string]string{"app": "9"}
	r2, _ := Compile(s, Local{NodeName: "node-1"}, a)
	b.ReportAllocs()
	for b.Loop() {
		Diff(r1, r2)
	}
}
