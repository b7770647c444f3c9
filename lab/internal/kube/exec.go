package kube

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// ExecResult is what a command printed and how it ended.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// Exec runs argv in a container of a pod through the API server's exec, as
// `kubectl exec` does: over WebSocket, falling back to SPDY where the API
// server or a proxy cannot upgrade to WebSocket. container "" is the pod's
// first container. A non-zero exit is reported in the result, not as error.
func Exec(ctx context.Context, rc *rest.Config, c kubernetes.Interface, namespace, pod, container string, argv []string) (ExecResult, error) {
	if len(argv) == 0 {
		return ExecResult{}, errors.New("exec: no command")
	}
	if container == "" {
		p, err := c.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return ExecResult{}, fmt.Errorf("exec in pod %s/%s: %w", namespace, pod, err)
		}
		if len(p.Spec.Containers) == 0 {
			return ExecResult{}, fmt.Errorf("exec in pod %s/%s: the pod has no containers", namespace, pod)
		}
		container = p.Spec.Containers[0].Name
	}
	req := c.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: argv, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	spdy, err := remotecommand.NewSPDYExecutor(rc, "POST", req.URL())
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in pod %s/%s: SPDY executor: %w", namespace, pod, err)
	}
	ws, err := remotecommand.NewWebSocketExecutor(rc, "GET", req.URL().String())
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in pod %s/%s: WebSocket executor: %w", namespace, pod, err)
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in pod %s/%s: %w", namespace, pod, err)
	}
	var stdout, stderr bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	res := ExecResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var exit utilexec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		res.ExitCode = exit.ExitStatus()
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("exec %q in pod %s/%s: %w", argv[0], namespace, pod, err)
	}
	return res, nil
}

// NodeShell runs commands on nodes (in their network namespace) through one
// hostNetwork pod per node, made on first use in Namespace and labelled with
// Labels; the pod runs Image's `cnilab-probe serve` on a loopback port so it
// stays up, and commands are exec'd in it. Removing Namespace removes them.
type NodeShell struct {
	REST      *rest.Config
	Client    kubernetes.Interface
	Namespace string
	Image     string
	Labels    map[string]string
	// Timeout bounds the wait for a new pod to run (default 2 minutes).
	Timeout time.Duration

	mu   sync.Mutex
	pods map[string]string // node → running pod
}

// Exec runs argv on node.
func (s *NodeShell) Exec(ctx context.Context, node string, argv []string) (ExecResult, error) {
	pod, err := s.ensure(ctx, node)
	if err != nil {
		return ExecResult{}, err
	}
	return Exec(ctx, s.REST, s.Client, s.Namespace, pod, "shell", argv)
}

// PodName is the name of node's shell pod: "node-shell-<node>", or a hash of
// the node name where that is no valid pod name.
func PodName(node string) string {
	name := "node-shell-" + node
	if len(validation.IsDNS1123Subdomain(name)) == 0 && len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(node))
	return "node-shell-" + hex.EncodeToString(sum[:8])
}

// ShellPod is node's shell pod as NodeShell creates it.
func ShellPod(namespace, node, image string, labels map[string]string) *corev1.Pod {
	l := map[string]string{"app.kubernetes.io/name": "cnilab-node-shell"}
	for k, v := range labels {
		l[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: PodName(node), Namespace: namespace, Labels: l},
		Spec: corev1.PodSpec{
			// Bound to the node directly: no scheduler decision, and no
			// taint of the node's keeps it away.
			NodeName:                      node,
			HostNetwork:                   true,
			TerminationGracePeriodSeconds: new(int64),
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: "shell", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
				// Something long-running to exec into: a server on a
				// loopback port the kernel picks.
				Args: []string{"serve", "--name", node, "--address", "127.0.0.1", "--tcp", "0"},
			}},
		},
	}
}

func (s *NodeShell) ensure(ctx context.Context, node string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pods[node]; ok {
		return p, nil
	}
	want := ShellPod(s.Namespace, node, s.Image, s.Labels)
	pods := s.Client.CoreV1().Pods(s.Namespace)
	if _, err := pods.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("node %s: create shell pod %s/%s: %w", node, s.Namespace, want.Name, err)
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		if p.Spec.NodeName != node {
			return false, fmt.Errorf("pod %s/%s runs on %s, not %s", s.Namespace, want.Name, p.Spec.NodeName, node)
		}
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			return false, fmt.Errorf("pod %s/%s ended (%s): %s", s.Namespace, want.Name, p.Status.Phase, p.Status.Message)
		}
		last = fmt.Sprintf("phase %s %s", p.Status.Phase, waitingReason(p))
		return p.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		if wait.Interrupted(err) {
			err = fmt.Errorf("not running after %s: %s", timeout, last)
		}
		return "", fmt.Errorf("node %s: shell pod %s/%s: %w", node, s.Namespace, want.Name, err)
	}
	if s.pods == nil {
		s.pods = map[string]string{}
	}
	s.pods[node] = want.Name
	return want.Name, nil
}

// waitingReason names why a pod's containers wait (ErrImagePull, …).
func waitingReason(p *corev1.Pod) string {
	for _, c := range p.Status.ContainerStatuses {
		if w := c.State.Waiting; w != nil {
			return w.Reason + " " + w.Message
		}
	}
	return ""
}
