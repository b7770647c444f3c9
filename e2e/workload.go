package e2e

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
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
func ProbePod(namespace string, s PodSpec) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: namespace, Labels: s.Labels},
		Spec: corev1.PodSpec{
			HostNetwork:                   s.HostNetwork,
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name: "probe", Image: ProbeImage,
				Args:  []string{"serve"},
				Ports: s.Ports,
			}},
		},
	}
	if s.Node != "" {
		pod.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": s.Node}
	}
	return pod
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

// CreateNamespace creates a namespace and waits for its default service
// account, without which the API server refuses pods.
func CreateNamespace(ctx context.Context, c kubernetes.Interface, name string, labels map[string]string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// DeleteNamespace deletes a namespace and waits until it is gone, which needs
// the controller manager and the node role to finish every pod in it.
func DeleteNamespace(ctx context.Context, c kubernetes.Interface, name string, timeout time.Duration) error {
	err := c.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
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
