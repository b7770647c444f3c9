package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/cnilab/cnilab/lab/probe"
)

// ProbeImage is the image name test pods carry. Lab nodes do not pull images:
// the node role runs cnilab-probe for the pod's ports; kind nodes load this
// image.
const ProbeImage = "cnilab/cnilab-probe:dev"

// PodSpec describes a probe pod.
type PodSpec struct {
	Name        string
	Labels      map[string]string
	Node        string // kubernetes.io/hostname to schedule on; "" lets the scheduler choose
	HostNetwork bool
	Ports       []corev1.ContainerPort
}

// ProbePod builds the pod: one container serving Ports with cnilab-probe.
// Its arguments serve every container port (`serve --name NAME --tcp 80,81
// --udp 80,81`), as a real container needs; NAME is the pod's name, or for a
// hostNetwork pod its node's (the downward API's spec.nodeName), which is
// how the suite tells who answered. SCTP ports are served only where this
// machine's kernel has SCTP: the suite probes SCTP on that condition too
// (see runnableProbes), and a listener that fails ends the server. The netns
// and qemu node roles read the container ports, not the arguments, and do
// the same.
func ProbePod(namespace string, s PodSpec) *corev1.Pod {
	c := corev1.Container{Name: "probe", Image: ProbeImage, Args: []string{"serve", "--name", s.Name}, Ports: s.Ports}
	if s.HostNetwork {
		c.Env = []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}}
		c.Args[2] = "$(NODE_NAME)"
	}
	c.Args = append(c.Args, serveArgs(s.Ports, probe.SCTPSupported())...)
	if tcp := firstPort(s.Ports, corev1.ProtocolTCP); tcp != 0 {
		// Ready once it listens, as the node roles report it.
		c.ReadinessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(tcp)}},
			PeriodSeconds: 1,
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: namespace, Labels: s.Labels},
		Spec: corev1.PodSpec{
			HostNetwork:                   s.HostNetwork,
			TerminationGracePeriodSeconds: new(int64),
			Containers:                    []corev1.Container{c},
		},
	}
	if s.Node != "" {
		pod.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": s.Node}
	}
	return pod
}

// serveArgs are cnilab-probe serve's port flags for container ports, one
// flag per protocol in the order TCP, UDP, SCTP, ports in the order given;
// SCTP ports only when sctp.
func serveArgs(ports []corev1.ContainerPort, sctp bool) []string {
	by := map[corev1.Protocol][]string{}
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		n := strconv.Itoa(int(p.ContainerPort))
		if !slices.Contains(by[proto], n) {
			by[proto] = append(by[proto], n)
		}
	}
	var out []string
	for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP} {
		if len(by[proto]) == 0 || (proto == corev1.ProtocolSCTP && !sctp) {
			continue
		}
		out = append(out, "--"+lowerProto(proto), strings.Join(by[proto], ","))
	}
	return out
}

// firstPort is the first container port of a protocol, 0 if none.
func firstPort(ports []corev1.ContainerPort, proto corev1.Protocol) int32 {
	for _, p := range ports {
		if p.Protocol == proto || (p.Protocol == "" && proto == corev1.ProtocolTCP) {
			return p.ContainerPort
		}
	}
	return 0
}

// Ports returns TCP and UDP container ports for each number, named like the
// upstream policy model: serve-80-tcp, serve-80-udp.
func Ports(numbers ...int32) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, n := range numbers {
		for _, p := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
			out = append(out, corev1.ContainerPort{
				Name: fmt.Sprintf("serve-%d-%s", n, lowerProto(p)), ContainerPort: n, Protocol: p,
			})
		}
	}
	return out
}

func lowerProto(p corev1.Protocol) string {
	switch p {
	case corev1.ProtocolTCP:
		return "tcp"
	case corev1.ProtocolUDP:
		return "udp"
	}
	return "sctp"
}

// NamespaceLabels are added to every namespace CreateNamespace makes (the
// suite sets its cluster's lab.OwnerLabels), and DeleteNamespace deletes
// only namespaces that carry them: on a cluster the suite does not own it
// removes nothing it did not create, and the provider's Delete finds what a
// killed run left. Nil: no labels, no check.
var NamespaceLabels map[string]string

// CreateNamespace creates a namespace and waits for its default service
// account, without which the API server refuses pods.
func CreateNamespace(ctx context.Context, c kubernetes.Interface, name string, labels map[string]string) error {
	l := maps.Clone(NamespaceLabels)
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, labels)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// DeleteNamespace deletes a namespace and waits until it is gone, which needs
// the controller manager and the node role to finish every pod in it. A
// namespace without NamespaceLabels is not the suite's: it is left alone,
// and that is an error.
func DeleteNamespace(ctx context.Context, c kubernetes.Interface, name string, timeout time.Duration) error {
	cur, err := c.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	for k, v := range NamespaceLabels {
		if cur.Labels[k] != v {
			return fmt.Errorf("namespace %s was not created by the suite (no label %s=%s): left alone", name, k, v)
		}
	}
	uid := cur.UID
	err = c.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return fmt.Errorf("namespace %s still exists after %s", name, timeout)
	}
	return nil
}

// WaitRunning waits until every named pod is Running, Ready and has an IP,
// and returns them.
func WaitRunning(ctx context.Context, c kubernetes.Interface, namespace string, names []string, timeout time.Duration) (map[string]*corev1.Pod, error) {
	out := map[string]*corev1.Pod{}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, n := range names {
			p, err := c.CoreV1().Pods(namespace).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			if !PodReady(p) || p.Status.PodIP == "" {
				last = fmt.Sprintf("%s/%s is %s %s", namespace, n, p.Status.Phase, p.Status.Message)
				return false, nil
			}
			out[n] = p
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("pods not running after %s: %s", timeout, last)
	}
	return out, nil
}

// PodReady reports the pod's Ready condition.
func PodReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
