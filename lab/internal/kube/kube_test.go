package kube

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/fake"
)

func TestResolveKubeconfig(t *testing.T) {
	t.Setenv("CNILAB_KUBECONFIG", "")
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", "/home/someone")
	for _, tc := range []struct{ explicit, cnilab, kube, want, err string }{
		{explicit: "/a", cnilab: "/b", kube: "/c", want: "/a"},
		{cnilab: "/b", kube: "/c", want: "/b"},
		{kube: "/c", want: "/c"},
		{kube: "/c:/d", err: "names several files"},
		{want: "/home/someone/.kube/config"},
	} {
		t.Setenv("CNILAB_KUBECONFIG", tc.cnilab)
		t.Setenv("KUBECONFIG", tc.kube)
		got, err := ResolveKubeconfig(tc.explicit)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: want error %q, got %q %v", tc, tc.err, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: got %q %v", tc, got, err)
		}
	}
}

func TestLoadKubeconfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kc")
	data := `apiVersion: v1
kind: Config
clusters:
- {name: cnilab-lab1, cluster: {server: "https://127.0.0.1:40123", insecure-skip-tls-verify: true}}
- {name: other, cluster: {server: "https://10.0.0.1"}}
users:
- {name: admin, user: {token: t}}
contexts:
- {name: a, context: {cluster: cnilab-lab1, user: admin}}
- {name: b, context: {cluster: other, user: admin}}
current-context: a
`
	if err := WriteKubeconfig(path, []byte(data)); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	kc, err := LoadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := kc.ServerPort()
	if kc.Cluster != "cnilab-lab1" || host != "127.0.0.1" || port != "40123" || err != nil {
		t.Errorf("cluster %q server %s:%s %v", kc.Cluster, host, port, err)
	}
	if err := WriteKubeconfig(filepath.Join(t.TempDir(), "bad"), []byte("{not yaml")); err == nil {
		t.Error("wrote a kubeconfig that does not parse")
	}
	if _, err := LoadKubeconfig(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
}

func TestShellPod(t *testing.T) {
	p := ShellPod("cnilab-t", "kind-worker", "cnilab/cnilab-probe:dev", map[string]string{OwnedLabel: "true"})
	if p.Name != "node-shell-kind-worker" || p.Namespace != "cnilab-t" || p.Spec.NodeName != "kind-worker" || !p.Spec.HostNetwork {
		t.Errorf("pod %s/%s on %q hostNetwork %v", p.Namespace, p.Name, p.Spec.NodeName, p.Spec.HostNetwork)
	}
	if p.Labels[OwnedLabel] != "true" || len(p.Spec.Tolerations) != 1 || p.Spec.Tolerations[0].Operator != corev1.TolerationOpExists {
		t.Errorf("labels %v tolerations %v", p.Labels, p.Spec.Tolerations)
	}
	c := p.Spec.Containers[0]
	if c.Image != "cnilab/cnilab-probe:dev" || strings.Join(c.Args, " ") != "serve --name kind-worker --address 127.0.0.1 --tcp 0" {
		t.Errorf("container %s %v", c.Image, c.Args)
	}
	long := strings.Repeat("n", 80) + ".example.com"
	if name := PodName(long); len(name) > 63 || len(validation.IsDNS1123Subdomain(name)) > 0 || name == PodName(long+"x") {
		t.Errorf("pod name of a long node: %q", name)
	}
}

func TestNodeShellMakesOnePodPerNode(t *testing.T) {
	c := fake.NewClientset()
	s := &NodeShell{Client: c, Namespace: "ns", Image: "img", Timeout: 5 * time.Second}
	ctx := context.Background()
	go func() {
		// Stands in for the scheduler-free kubelet: the pod starts.
		for i := 0; i < 100; i++ {
			p, err := c.CoreV1().Pods("ns").Get(ctx, "node-shell-n1", metav1.GetOptions{})
			if err == nil {
				p.Status.Phase = corev1.PodRunning
				_, _ = c.CoreV1().Pods("ns").UpdateStatus(ctx, p, metav1.UpdateOptions{})
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	for i := 0; i < 2; i++ {
		name, err := s.ensure(ctx, "n1")
		if err != nil || name != "node-shell-n1" {
			t.Fatalf("ensure: %q %v", name, err)
		}
	}
	pods, _ := c.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
	if len(pods.Items) != 1 {
		t.Errorf("%d pods", len(pods.Items))
	}

	// A pod that ends says so rather than timing out.
	failed := ShellPod("ns", "n2", "img", nil)
	failed.Status.Phase = corev1.PodFailed
	failed.Status.Message = "evicted"
	if _, err := c.CoreV1().Pods("ns").Create(ctx, failed, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ensure(ctx, "n2"); err == nil || !strings.Contains(err.Error(), "ended (Failed): evicted") {
		t.Errorf("failed pod: %v", err)
	}
}

func TestDaemonSetReady(t *testing.T) {
	ds := func(gen, observed int64, desired, updated, ready int32) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: gen}, Status: appsv1.DaemonSetStatus{
			ObservedGeneration: observed, DesiredNumberScheduled: desired, UpdatedNumberScheduled: updated, NumberReady: ready}}
	}
	for _, tc := range []struct {
		ds   *appsv1.DaemonSet
		ok   bool
		why  string
		name string
	}{
		{ds(2, 1, 3, 3, 3), false, "generation 2 not observed", "old generation"},
		{ds(1, 1, 0, 0, 0), false, "no pods scheduled", "nothing scheduled"},
		{ds(1, 1, 3, 2, 3), false, "2 of 3 pods updated", "rolling"},
		{ds(1, 1, 3, 3, 1), false, "1 of 3 pods ready", "starting"},
		{ds(1, 1, 3, 3, 3), true, "", "ready"},
	} {
		ok, why := DaemonSetReady(tc.ds)
		if ok != tc.ok || !strings.Contains(why, tc.why) {
			t.Errorf("%s: %v %q", tc.name, ok, why)
		}
	}
}

func TestNodeFromAndWaitReady(t *testing.T) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		Addresses:  []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "1.2.3.4"}, {Type: corev1.NodeInternalIP, Address: "172.18.0.2"}},
		NodeInfo:   corev1.NodeSystemInfo{KernelVersion: "6.12.0"},
	}}
	if got := NodeFrom(n); got != (Node{Name: "n1", IP: "172.18.0.2", Kernel: "6.12.0", Ready: true}) {
		t.Errorf("node %+v", got)
	}
	c := fake.NewClientset(n)
	if nodes, err := WaitNodesReady(context.Background(), c, 1, 2*time.Second); err != nil || len(nodes) != 1 {
		t.Errorf("wait: %v %v", nodes, err)
	}
	if _, err := WaitNodesReady(context.Background(), c, 2, 1500*time.Millisecond); err == nil || !strings.Contains(err.Error(), "1 of 2 nodes registered") {
		t.Errorf("wait for 2: %v", err)
	}
}
