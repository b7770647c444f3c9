package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	pol "github.com/cnilab/cnilab/e2e/policy"
	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/probe"
)

// ModelNamespaces are the namespaces of the standard policy model.
var ModelNamespaces = []string{"x", "y", "z"}

// CreateModel creates the standard model's namespaces and pods and returns
// the model with the pods' IPs.
func CreateModel(ctx context.Context, c kubernetes.Interface) (pol.Model, error) {
	m := pol.NewStandardModel()
	for _, ns := range m.Namespaces {
		if err := CreateNamespace(ctx, c, ns.Name, ns.Labels); err != nil {
			return m, err
		}
	}
	for _, p := range m.Pods {
		if _, err := c.CoreV1().Pods(p.Namespace).Create(ctx, modelPod(p), metav1.CreateOptions{}); err != nil {
			return m, fmt.Errorf("create pod %s: %w", p.Key(), err)
		}
	}
	return refreshIPs(ctx, c, m)
}

func modelPod(p pol.Pod) *corev1.Pod {
	return ProbePod(p.Namespace, PodSpec{Name: p.Name, Labels: p.Labels, Ports: p.Ports})
}

// refreshIPs waits for every pod of m to run and records its IP.
func refreshIPs(ctx context.Context, c kubernetes.Interface, m pol.Model) (pol.Model, error) {
	ips := map[string]string{}
	byNS := map[string][]string{}
	for _, p := range m.Pods {
		byNS[p.Namespace] = append(byNS[p.Namespace], p.Name)
	}
	for ns, names := range byNS {
		pods, err := WaitRunning(ctx, c, ns, names, 2*time.Minute)
		if err != nil {
			return m, err
		}
		for n, p := range pods {
			ips[ns+"/"+n] = p.Status.PodIP
		}
	}
	return m.WithPodIPs(ips)
}

// ApplyStep makes the cluster do what a (resolved) step's action says.
func ApplyStep(ctx context.Context, c kubernetes.Interface, s pol.Step) error {
	switch {
	case s.CreatePolicy != nil:
		_, err := c.NetworkingV1().NetworkPolicies(s.CreatePolicy.Namespace).Create(ctx, s.CreatePolicy, metav1.CreateOptions{})
		return err
	case s.UpdatePolicy != nil:
		np := s.UpdatePolicy
		cur, err := c.NetworkingV1().NetworkPolicies(np.Namespace).Get(ctx, np.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec, cur.Labels = np.Spec, np.Labels
		_, err = c.NetworkingV1().NetworkPolicies(np.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
		return err
	case s.DeletePolicy != nil:
		return c.NetworkingV1().NetworkPolicies(s.DeletePolicy.Namespace).Delete(ctx, s.DeletePolicy.Name, metav1.DeleteOptions{})
	case s.SetNamespaceLabels != nil:
		return setNamespaceLabels(ctx, c, s.SetNamespaceLabels.Namespace, s.SetNamespaceLabels.Labels)
	case s.SetPodLabels != nil:
		return setPodLabels(ctx, c, s.SetPodLabels.Namespace, s.SetPodLabels.Name, s.SetPodLabels.Labels)
	case s.CreatePod != nil:
		p := *s.CreatePod
		if len(p.Ports) == 0 {
			p.Ports = pol.StandardContainerPorts() // as Step.CreatePod says
		}
		_, err := c.CoreV1().Pods(p.Namespace).Create(ctx, modelPod(p), metav1.CreateOptions{})
		return err
	case s.DeletePod != nil:
		return deletePodAndWait(ctx, c, s.DeletePod.Namespace, s.DeletePod.Name)
	}
	return nil
}

func setNamespaceLabels(ctx context.Context, c kubernetes.Interface, name string, labels map[string]string) error {
	ns, err := c.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	ns.Labels = map[string]string{"kubernetes.io/metadata.name": name}
	// The suite's ownership labels stay: no policy case selects on them.
	for k, v := range NamespaceLabels {
		ns.Labels[k] = v
	}
	for k, v := range labels {
		ns.Labels[k] = v
	}
	_, err = c.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{})
	return err
}

func setPodLabels(ctx context.Context, c kubernetes.Interface, ns, name string, labels map[string]string) error {
	p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	p.Labels = labels
	_, err = c.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{})
	return err
}

func deletePodAndWait(ctx context.Context, c kubernetes.Interface, ns, name string) error {
	if err := c.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	for i := 0; i < 240; i++ {
		if _, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("pod %s/%s still exists after 60s", ns, name)
}

// ResetModel brings the cluster back to the standard model with no policies
// after a case changed it, and returns the model with current IPs.
func ResetModel(ctx context.Context, c kubernetes.Interface, after pol.Model) (pol.Model, error) {
	std := pol.NewStandardModel()
	for _, ns := range ModelNamespaces {
		if err := c.NetworkingV1().NetworkPolicies(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			return std, fmt.Errorf("delete policies in %s: %w", ns, err)
		}
	}
	for _, ns := range std.Namespaces {
		if got, _ := after.Namespace(ns.Name); !sameLabels(got.Labels, ns.Labels) {
			if err := setNamespaceLabels(ctx, c, ns.Name, ns.Labels); err != nil {
				return std, err
			}
		}
	}
	// What is in the cluster decides, not what the case thought it did.
	for _, ns := range ModelNamespaces {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return std, err
		}
		for _, p := range pods.Items {
			if _, ok := std.Pod(ns + "/" + p.Name); !ok || p.DeletionTimestamp != nil {
				if err := deletePodAndWait(ctx, c, ns, p.Name); err != nil {
					return std, err
				}
			}
		}
	}
	for _, p := range std.Pods {
		cur, err := c.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if _, err := c.CoreV1().Pods(p.Namespace).Create(ctx, modelPod(p), metav1.CreateOptions{}); err != nil {
				return std, err
			}
		case err != nil:
			return std, err
		case len(containerPortsOf(cur)) != len(p.Ports):
			// Not the model's pod (a case re-created it with other ports).
			if err := deletePodAndWait(ctx, c, p.Namespace, p.Name); err != nil {
				return std, err
			}
			if _, err := c.CoreV1().Pods(p.Namespace).Create(ctx, modelPod(p), metav1.CreateOptions{}); err != nil {
				return std, err
			}
		case !sameLabels(cur.Labels, p.Labels):
			if err := setPodLabels(ctx, c, p.Namespace, p.Name, p.Labels); err != nil {
				return std, err
			}
		}
	}
	return refreshIPs(ctx, c, std)
}

func containerPortsOf(p *corev1.Pod) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, c := range p.Spec.Containers {
		out = append(out, c.Ports...)
	}
	return out
}

func sameLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// ProbeMatrix fills the observed side of every table: one batch exec per
// source pod, all sources at once.
func ProbeMatrix(ctx context.Context, cl lab.Cluster, m pol.Model, rs []*pol.Reachability, timeout time.Duration) error {
	type probeRef struct {
		r  *pol.Reachability
		to string
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for _, from := range m.PodKeys() {
		var specs []string
		var refs []probeRef
		for _, r := range rs {
			for _, to := range r.Pods {
				p, _ := m.Pod(to)
				specs = append(specs, spec(r.PortProtocol, p.IP))
				refs = append(refs, probeRef{r, to})
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns, name, _ := pol.SplitKey(from)
			args := append([]string{"cnilab-probe", "batch", "--timeout", timeout.String()}, specs...)
			res, err := cl.ExecPod(ctx, ns, name, args)
			if err == nil && res.ExitCode != 0 {
				err = fmt.Errorf("probe batch from %s exited %d: %s", from, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
			}
			var results []probe.Result
			if err == nil {
				dec := json.NewDecoder(strings.NewReader(string(res.Stdout)))
				for dec.More() {
					var r probe.Result
					if derr := dec.Decode(&r); derr != nil {
						err = fmt.Errorf("probe batch from %s: %w", from, derr)
						break
					}
					results = append(results, r)
				}
				if err == nil && len(results) != len(refs) {
					err = fmt.Errorf("probe batch from %s: %d results for %d probes", from, len(results), len(refs))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			for i, ref := range refs {
				ref.r.Observe(from, ref.to, results[i].Success)
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func spec(pp pol.PortProtocol, ip string) string {
	if pp.Protocol == pol.ProtocolICMP {
		return "icmp/" + ip
	}
	return strings.ToLower(string(pp.Protocol)) + "/" + net.JoinHostPort(ip, strconv.Itoa(int(pp.Port)))
}
