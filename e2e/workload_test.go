package e2e

import (
	"context"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/cnilab/cnilab/lab/probe"
)

func TestProbePodServesItsPorts(t *testing.T) {
	ports := append(Ports(80, 81), corev1.ContainerPort{Name: "serve-80-sctp", ContainerPort: 80, Protocol: corev1.ProtocolSCTP})
	p := ProbePod("x", PodSpec{Name: "a", Ports: ports})
	c := p.Spec.Containers[0]
	want := []string{"serve", "--name", "a", "--tcp", "80,81", "--udp", "80,81"}
	if probe.SCTPSupported() {
		want = append(want, "--sctp", "80")
	}
	if !reflect.DeepEqual(c.Args, want) {
		t.Errorf("args %q, want %q", c.Args, want)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.TCPSocket.Port.IntValue() != 80 {
		t.Errorf("readiness probe %+v", c.ReadinessProbe)
	}
	if !reflect.DeepEqual(c.Ports, ports) {
		t.Errorf("ports %v", c.Ports)
	}

	host := ProbePod("x", PodSpec{Name: "h", HostNetwork: true, Node: "n1", Ports: Ports(31080)})
	hc := host.Spec.Containers[0]
	if strings.Join(hc.Args, " ") != "serve --name $(NODE_NAME) --tcp 31080 --udp 31080" {
		t.Errorf("hostNetwork args %q", hc.Args)
	}
	if len(hc.Env) != 1 || hc.Env[0].Name != "NODE_NAME" || hc.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("env %+v", hc.Env)
	}
	if host.Spec.NodeSelector["kubernetes.io/hostname"] != "n1" || !host.Spec.HostNetwork {
		t.Errorf("spec %+v", host.Spec)
	}

	if got := serveArgs([]corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 8080, Protocol: corev1.ProtocolTCP}, {ContainerPort: 53, Protocol: corev1.ProtocolSCTP}}, false); !reflect.DeepEqual(got, []string{"--tcp", "8080"}) {
		t.Errorf("default protocol, duplicates, no SCTP: %q", got)
	}
	if p := ProbePod("x", PodSpec{Name: "udp", Ports: []corev1.ContainerPort{{ContainerPort: 53, Protocol: corev1.ProtocolUDP}}}); p.Spec.Containers[0].ReadinessProbe != nil {
		t.Error("a UDP-only pod has no TCP port to probe")
	}
}

func TestNamespacesCarryOwnerLabels(t *testing.T) {
	defer func(l map[string]string) { NamespaceLabels = l }(NamespaceLabels)
	NamespaceLabels = map[string]string{"cnilab.io/owned": "true", "cnilab.io/lab": "t"}
	ctx := context.Background()
	c := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "mine"}},
	)
	if err := CreateNamespace(ctx, c, "mine", map[string]string{"ns": "mine"}); err != nil {
		t.Fatal(err)
	}
	ns, _ := c.CoreV1().Namespaces().Get(ctx, "mine", metav1.GetOptions{})
	if want := map[string]string{"cnilab.io/owned": "true", "cnilab.io/lab": "t", "ns": "mine"}; !reflect.DeepEqual(ns.Labels, want) {
		t.Errorf("labels %v", ns.Labels)
	}
	if err := DeleteNamespace(ctx, c, "theirs", 0); err == nil || !strings.Contains(err.Error(), "not created by the suite") {
		t.Errorf("deleting a namespace that is not the suite's: %v", err)
	}
	if _, err := c.CoreV1().Namespaces().Get(ctx, "theirs", metav1.GetOptions{}); err != nil {
		t.Errorf("their namespace is gone: %v", err)
	}
	if err := DeleteNamespace(ctx, c, "mine", 0); err != nil {
		t.Errorf("delete mine: %v", err)
	}
	if err := DeleteNamespace(ctx, c, "never-there", 0); err != nil {
		t.Errorf("delete a namespace that is not there: %v", err)
	}
}
