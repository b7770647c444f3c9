package noderole

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"

	libcni "github.com/containernetworking/cni/libcni"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/cnilab/cnilab/lab/internal/kube"
	"github.com/cnilab/cnilab/lab/internal/netns"
)

const workers = 4

type podManager struct {
	cfg    Config
	client kubernetes.Interface
	log    *slog.Logger
	cni    *libcni.CNIConfig
	queue  workqueue.TypedRateLimitingInterface[string]
	pods   cache.Indexer

	mu        sync.Mutex
	sandboxes map[string]*sandbox // by pod UID
}

func newPodManager(cfg Config, client kubernetes.Interface, log *slog.Logger) *podManager {
	return &podManager{
		cfg: cfg, client: client, log: log,
		cni:       libcni.NewCNIConfigWithCacheDir(cfg.CNIBinDirs, cfg.CNICacheDir, nil),
		queue:     workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		sandboxes: map[string]*sandbox{},
	}
}

func (m *podManager) run(ctx context.Context) error {
	if err := os.MkdirAll(sandboxDir(m.cfg), 0o755); err != nil {
		return fmt.Errorf("node role: %w", err)
	}
	saved, err := m.loadAll()
	if err != nil {
		return err
	}
	m.sandboxes = saved
	factory := informers.NewSharedInformerFactoryWithOptions(m.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", m.cfg.NodeName).String()
		}))
	inf := factory.Core().V1().Pods().Informer()
	m.pods = inf.GetIndexer()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			m.queue.Add(key)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) }, DeleteFunc: enqueue,
	}); err != nil {
		return fmt.Errorf("node role: pod informer: %w", err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("node role: pod informer did not sync")
	}
	m.collectOrphans(ctx)
	defer m.queue.ShutDown()
	for i := 0; i < workers; i++ {
		go func() {
			for m.next(ctx) {
			}
		}()
	}
	<-ctx.Done()
	return nil
}

// collectOrphans tears down sandboxes whose pod no longer exists.
func (m *podManager) collectOrphans(ctx context.Context) {
	live := map[string]bool{}
	for _, obj := range m.pods.List() {
		live[string(obj.(*corev1.Pod).UID)] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for uid, sb := range m.sandboxes {
		if !live[uid] {
			m.log.Info("removing sandbox of a pod that is gone", "pod", sb.Namespace+"/"+sb.Name)
			m.teardown(ctx, sb)
			delete(m.sandboxes, uid)
		}
	}
}

func (m *podManager) next(ctx context.Context) bool {
	key, quit := m.queue.Get()
	if quit {
		return false
	}
	defer m.queue.Done(key)
	if err := m.sync(ctx, key); err != nil {
		m.log.Warn("sync pod", "pod", key, "err", err)
		m.queue.AddRateLimited(key)
		return true
	}
	m.queue.Forget(key)
	return true
}

func (m *podManager) sync(ctx context.Context, key string) error {
	obj, exists, err := m.pods.GetByKey(key)
	if err != nil {
		return err
	}
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	if !exists {
		m.removeByName(ctx, ns, name, "")
		return nil
	}
	pod := obj.(*corev1.Pod)
	// A pod that was replaced under the same name leaves an older sandbox.
	m.removeByName(ctx, ns, name, string(pod.UID))
	if pod.DeletionTimestamp != nil {
		m.removeByUID(ctx, string(pod.UID))
		err := m.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To(int64(0)),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("finish deleting pod: %w", err)
		}
		return nil
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	m.mu.Lock()
	sb := m.sandboxes[string(pod.UID)]
	m.mu.Unlock()
	if sb == nil {
		m.log.Info("setting up pod", "pod", key)
		sb, err = m.setup(ctx, pod)
		if err != nil {
			m.reportFailure(ctx, pod, err)
			return err
		}
		m.mu.Lock()
		m.sandboxes[sb.UID] = sb
		m.mu.Unlock()
		m.log.Info("pod running", "pod", key, "ips", sb.IPs)
	}
	if podStatusCurrent(pod, sb) {
		return nil
	}
	return m.writeRunning(ctx, pod, sb)
}

func (m *podManager) removeByUID(ctx context.Context, uid string) {
	m.mu.Lock()
	sb := m.sandboxes[uid]
	delete(m.sandboxes, uid)
	m.mu.Unlock()
	if sb != nil {
		m.log.Info("tearing down pod", "pod", sb.Namespace+"/"+sb.Name)
		m.teardown(ctx, sb)
	}
}

// removeByName removes sandboxes of ns/name except the one with keepUID.
func (m *podManager) removeByName(ctx context.Context, ns, name, keepUID string) {
	m.mu.Lock()
	var uids []string
	for uid, sb := range m.sandboxes {
		if sb.Namespace == ns && sb.Name == name && uid != keepUID {
			uids = append(uids, uid)
		}
	}
	m.mu.Unlock()
	for _, uid := range uids {
		m.removeByUID(ctx, uid)
	}
}

func podStatusCurrent(pod *corev1.Pod, sb *sandbox) bool {
	if pod.Status.Phase != corev1.PodRunning || len(sb.IPs) == 0 || pod.Status.PodIP != sb.IPs[0] {
		return false
	}
	return kube.PodReady(pod)
}

func (m *podManager) writeRunning(ctx context.Context, pod *corev1.Pod, sb *sandbox) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := m.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != pod.UID {
			return nil
		}
		st := runningStatus(cur, sb, m.cfg.NodeIP)
		cur.Status = st
		_, err = m.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

func (m *podManager) reportFailure(ctx context.Context, pod *corev1.Pod, cause error) {
	_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := m.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || cur.UID != pod.UID {
			return err
		}
		cur.Status.Phase = corev1.PodPending
		cur.Status.Reason = "SandboxSetupFailed"
		cur.Status.Message = cause.Error()
		_, err = m.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

func runningStatus(pod *corev1.Pod, sb *sandbox, nodeIP string) corev1.PodStatus {
	started := metav1.NewTime(sb.Started)
	st := pod.Status
	st.Phase = corev1.PodRunning
	st.Reason, st.Message = "", ""
	st.HostIP = nodeIP
	st.HostIPs = []corev1.HostIP{{IP: nodeIP}}
	st.PodIP = sb.IPs[0]
	st.PodIPs = nil
	for _, ip := range sb.IPs {
		st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: ip})
	}
	st.StartTime = &started
	st.Conditions = nil
	for _, t := range []corev1.PodConditionType{"PodReadyToStartContainers", corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodScheduled} {
		st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: started})
	}
	st.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: "cnilab://" + sb.ContainerID + "/" + c.Name,
			Ready: true, Started: ptr.To(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
		})
	}
	return st
}

// commandIn builds a command that runs in the named namespace, or in the node
// role's own namespace when ns is empty (hostNetwork pods).
func (m *podManager) commandIn(ns, bin string, args ...string) (*exec.Cmd, error) {
	if ns == "" {
		return exec.Command(bin, args...), nil
	}
	return netns.Command(ns, bin, args...)
}
