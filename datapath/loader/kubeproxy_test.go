package loader

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
)

// The rules of kube-proxy's iptables mode that matter to a datapath beside
// it: KUBE-FORWARD's drop of packets conntrack finds INVALID (half a
// connection), and a Service's DNAT in PREROUTING.
func kubeProxyRules(t *testing.T, n *clusterNode, dnat map[string]string) {
	t.Helper()
	rules := [][]string{{"-A", "FORWARD", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"}}
	for vip, backend := range dnat {
		rules = append(rules, []string{"-t", "nat", "-A", "PREROUTING", "-d", vip + "/32", "-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination", backend})
	}
	n.do(t, func() error {
		for _, r := range rules {
			if out, err := exec.Command("iptables", append([]string{"-w"}, r...)...).CombinedOutput(); err != nil {
				return fmt.Errorf("iptables %s: %v: %s", strings.Join(r, " "), err, out)
			}
		}
		return nil
	})
}

// invalidDrops is the packet count of the INVALID drop rule in n's FORWARD.
func invalidDrops(t *testing.T, n *clusterNode) string {
	t.Helper()
	var out []byte
	n.do(t, func() (err error) {
		out, err = exec.Command("iptables", "-w", "-v", "-n", "-x", "-L", "FORWARD").CombinedOutput()
		return err
	})
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "INVALID") {
			return strings.Fields(l)[0]
		}
	}
	return "?"
}

// Beside kube-proxy (issue 18): with the node's stack dropping what its
// conntrack finds INVALID and translating Service addresses, pod-to-pod
// traffic across nodes and pods' connections to Services (backend on the
// same node and on the other one) all connect. Before, the programs sent one
// half of each connection past the stack: every probe here timed out.
func TestForwardBesideKubeProxy(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables (apt-get install iptables)")
	}
	svc := netip.MustParsePrefix("10.252.0.0/16")
	for _, tc := range []struct {
		name   string
		mode   RoutingMode
		attach AttachMode
	}{
		{"native-tcx", Native, AttachTCX},
		{"native-tc", Native, AttachTC},
		{"vxlan-tcx", VXLAN, AttachTCX},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireFeatures(t, tc.attach == AttachTCX, true)
			t.Setenv(AttachEnv, string(tc.attach))
			a, b := newCluster(t, tc.mode)
			a.serviceCIDR, b.serviceCIDR = svc, svc
			mtu := 1500
			if tc.mode == VXLAN {
				mtu = vxlanMTU
			}
			client := addPod(t, a.node, "client", "lxc1", a.pod.ip.Next(), a.gw, mtu)
			a.start(t, tc.mode, b)
			b.start(t, tc.mode, a)
			a.do(t, func() error { return a.dp.AttachEndpoint(client.hostIdx) })
			if err := a.dp.UpsertEndpoint(client.ip, client.endpoint()); err != nil {
				t.Fatal(err)
			}
			vipA, vipB := "10.252.0.10", "10.252.0.20" // backends pod a, pod b
			dnat := map[string]string{vipA: a.pod.ip.String() + ":8080", vipB: b.pod.ip.String() + ":8080"}
			kubeProxyRules(t, a, dnat)
			kubeProxyRules(t, b, dnat)
			serveEcho(t, a.pod.ns, a.pod.ip.String()+":8080")
			serveEcho(t, b.pod.ns, b.pod.ip.String()+":8080")

			bAddr := b.pod.ip.String() + ":8080"
			mustConnect(t, a.pod.ns, bAddr, "pod a -> pod b (other node)")
			mustConnect(t, b.pod.ns, a.pod.ip.String()+":8080", "pod b -> pod a (other node)")
			mustBulk(t, client.ns, bAddr, 1<<20)
			mustConnect(t, client.ns, vipA+":80", "client -> Service, backend on the same node")
			mustConnect(t, client.ns, vipB+":80", "client -> Service, backend on the other node")
			mustConnect(t, b.pod.ns, vipA+":80", "pod b -> Service, backend on the other node")
			mustBulk(t, client.ns, vipB+":80", 1<<20)
			t.Logf("INVALID drops: node a %s, node b %s", invalidDrops(t, a), invalidDrops(t, b))
		})
	}
}
