package existing

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/cnilab/cnilab/lab/internal/kube"
)

const testKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: some-cluster
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: secret}
contexts:
- name: here
  context: {cluster: some-cluster, user: admin}
current-context: here
`

func node(name, ip, kernel string, ready bool, taints ...corev1.Taint) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}},
			NodeInfo:   corev1.NodeSystemInfo{KernelVersion: kernel},
		},
	}
}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// provider returns a Provider on a fake cluster holding objs.
func provider(t *testing.T, objs ...runtime.Object) (Provider, *fake.Clientset) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientset(objs...)
	return Provider{Kubeconfig: path, Connect: func(*kube.Kubeconfig) (kubernetes.Interface, error) { return c, nil }}, c
}

func TestCreateFindsReadySchedulableNodes(t *testing.T) {
	p, c := provider(t,
		node("b-worker", "10.0.0.3", "6.12.1", true),
		node("a-control", "10.0.0.2", "6.12.1", true, corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}),
		node("c-broken", "10.0.0.4", "6.12.1", false),
		node("a-worker", "10.0.0.1", "6.12.1", true, corev1.Taint{Key: "soft", Effect: corev1.TaintEffectPreferNoSchedule}),
	)
	cl, err := p.Create(context.Background(), Options{Name: "t", Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []kube.Node{
		{Name: "a-worker", IP: "10.0.0.1", Kernel: "6.12.1", Ready: true},
		{Name: "b-worker", IP: "10.0.0.3", Kernel: "6.12.1", Ready: true},
	}
	if got := cl.Nodes(); !reflect.DeepEqual(got, want) {
		t.Errorf("nodes %+v, want %+v", got, want)
	}
	if got := cl.KernelRelease(); got != "6.12.1" {
		t.Errorf("kernel %q", got)
	}
	if cl.Name() != "t" || cl.Kubeconfig() != p.Kubeconfig || cl.REST().Host != "https://127.0.0.1:6443" {
		t.Errorf("name %q kubeconfig %q host %q", cl.Name(), cl.Kubeconfig(), cl.REST().Host)
	}
	ns, err := c.CoreV1().Namespaces().Get(context.Background(), "cnilab-t", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{kube.OwnedLabel: "true", kube.LabLabel: "t", kube.ProviderLabel: "existing", "pod-security.kubernetes.io/enforce": "privileged"} {
		if ns.Labels[k] != v {
			t.Errorf("namespace label %s=%q, want %q", k, ns.Labels[k], v)
		}
	}
	// A second lab of the same name on the same cluster reuses its namespace.
	if _, err := p.Create(context.Background(), Options{Name: "t", Nodes: 1}); err != nil {
		t.Errorf("create again: %v", err)
	}
	if _, err := p.Get("t"); err != nil {
		t.Errorf("get: %v", err)
	}
	if _, err := p.Get("nope"); err == nil || !strings.Contains(err.Error(), `no lab named "nope"`) {
		t.Errorf("get of a lab that is not there: %v", err)
	}
}

func TestCreateNeedsEnoughNodes(t *testing.T) {
	defer func(d time.Duration) { readyTimeout = d }(readyTimeout)
	readyTimeout = 1500 * time.Millisecond
	p, _ := provider(t, node("only", "10.0.0.1", "6.1", true), node("down", "10.0.0.2", "6.1", false))
	_, err := p.Create(context.Background(), Options{Name: "t", Nodes: 2})
	if err == nil || !strings.Contains(err.Error(), "want 2 Ready nodes that take pods: 2 nodes, 1 of them Ready and schedulable") {
		t.Fatalf("want an error naming the nodes, got %v", err)
	}
}

func TestCreateLeavesForeignNamespaceAlone(t *testing.T) {
	p, c := provider(t, node("n", "10.0.0.1", "6.1", true), namespace("cnilab-t", map[string]string{"team": "theirs"}))
	_, err := p.Create(context.Background(), Options{Name: "t"})
	if err == nil || !strings.Contains(err.Error(), "is not cnilab's") {
		t.Fatalf("want a refusal, got %v", err)
	}
	ns, _ := c.CoreV1().Namespaces().Get(context.Background(), "cnilab-t", metav1.GetOptions{})
	if ns.Labels[kube.OwnedLabel] != "" {
		t.Errorf("foreign namespace relabelled: %v", ns.Labels)
	}
}

func TestDeleteRemovesOnlyOwnedNamespacesOfTheLab(t *testing.T) {
	p, c := provider(t,
		node("n", "10.0.0.1", "6.1", true),
		namespace("x", nil),
		namespace("cnilab-other", Owner("other")),
		namespace("cnilab-t", Owner("t")),
		namespace("suite-ns", Owner("t")),
		namespace("unowned", map[string]string{kube.LabLabel: "t", kube.ProviderLabel: "existing"}),
		namespace("kind-lab", kube.OwnerLabels("kind", "t")),
	)
	if names, err := p.List(); err != nil || !reflect.DeepEqual(names, []string{"other", "t"}) {
		t.Errorf("list %v %v", names, err)
	}
	if err := p.Delete("t"); err != nil {
		t.Fatal(err)
	}
	l, err := c.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, ns := range l.Items {
		left = append(left, ns.Name)
	}
	if want := []string{"cnilab-other", "kind-lab", "unowned", "x"}; !reflect.DeepEqual(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
	if err := p.DeleteAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Namespaces().Get(context.Background(), "cnilab-other", metav1.GetOptions{}); err == nil {
		t.Error("DeleteAll left cnilab-other")
	}
	if _, err := c.CoreV1().Namespaces().Get(context.Background(), "kind-lab", metav1.GetOptions{}); err != nil {
		t.Errorf("DeleteAll removed another provider's namespace: %v", err)
	}
}

type recordingRunner struct{ calls []string }

func (r *recordingRunner) ExecPod(_ context.Context, ns, pod string, argv []string) (kube.ExecResult, error) {
	r.calls = append(r.calls, "pod "+ns+"/"+pod+" "+strings.Join(argv, " "))
	return kube.ExecResult{Stdout: []byte("ok"), ExitCode: 1}, nil
}

func (r *recordingRunner) ExecNode(_ context.Context, node string, argv []string) (kube.ExecResult, error) {
	r.calls = append(r.calls, "node "+node+" "+strings.Join(argv, " "))
	return kube.ExecResult{}, nil
}

func TestRunnerTakesOverExec(t *testing.T) {
	p, c := provider(t, node("n", "10.0.0.1", "6.1", true))
	r := &recordingRunner{}
	var asked *kube.Kubeconfig
	p.RunnerFor = func(kc *kube.Kubeconfig) (Runner, error) { asked = kc; return r, nil }
	cl, err := p.Create(context.Background(), Options{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if asked == nil || asked.Cluster != "some-cluster" || asked.Server != "https://127.0.0.1:6443" {
		t.Fatalf("runner asked with %+v", asked)
	}
	res, err := cl.ExecPod(context.Background(), "x", "a", []string{"cnilab-probe", "connect"})
	if err != nil || res.ExitCode != 1 || string(res.Stdout) != "ok" {
		t.Errorf("exec pod: %+v %v", res, err)
	}
	if _, err := cl.ExecNode(context.Background(), "n", []string{"ip", "route"}); err != nil {
		t.Error(err)
	}
	if want := []string{"pod x/a cnilab-probe connect", "node n ip route"}; !reflect.DeepEqual(r.calls, want) {
		t.Errorf("calls %v", r.calls)
	}
	// No shell pod was made: the runner ran the node command.
	if pods, _ := c.CoreV1().Pods("cnilab-t").List(context.Background(), metav1.ListOptions{}); len(pods.Items) != 0 {
		t.Errorf("pods made: %v", pods.Items)
	}
}

func TestKubeconfigFromEnvironment(t *testing.T) {
	p, _ := provider(t, node("n", "10.0.0.1", "6.1", true))
	t.Setenv("CNILAB_KUBECONFIG", p.Kubeconfig)
	t.Setenv("KUBECONFIG", "/nonexistent")
	p.Kubeconfig = ""
	cl, err := p.Create(context.Background(), Options{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if want := os.Getenv("CNILAB_KUBECONFIG"); cl.Kubeconfig() != want {
		t.Errorf("kubeconfig %q, want %q", cl.Kubeconfig(), want)
	}
}
