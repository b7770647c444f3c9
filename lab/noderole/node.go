package noderole

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	libcni "github.com/containernetworking/cni/libcni"
)

const (
	leaseDuration   = 40
	leaseRenew      = 10 * time.Second
	statusEvery     = 20 * time.Second
	networkPollTick = time.Second
	// Version reported as the node's kubelet version.
	Version = "cnilab-node-role"
)

type node struct {
	cfg    Config
	client kubernetes.Interface
	log    *slog.Logger
}

// register creates the Node object, or adopts an existing one after a restart.
func (n *node) register(ctx context.Context) error {
	return retryUntil(ctx, 60, time.Second, func() error {
		_, err := n.client.CoreV1().Nodes().Get(ctx, n.cfg.NodeName, metav1.GetOptions{})
		if err == nil {
			return n.updateStatus(ctx)
		}
		if !apierrors.IsNotFound(err) {
			n.log.Info("waiting for the API server", "err", err)
			return err
		}
		labels := map[string]string{
			"kubernetes.io/hostname": n.cfg.NodeName,
			"kubernetes.io/os":       "linux",
			"kubernetes.io/arch":     runtime.GOARCH,
		}
		for k, v := range n.cfg.Labels {
			labels[k] = v
		}
		obj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.cfg.NodeName, Labels: labels}}
		if _, err := n.client.CoreV1().Nodes().Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("register node %s: %w", n.cfg.NodeName, err)
		}
		n.log.Info("registered node", "node", n.cfg.NodeName)
		return n.updateStatus(ctx)
	})
}

// networkReady is the kubelet's rule: the network is ready once the CNI
// configuration directory holds a valid configuration.
func (n *node) networkReady() (bool, string) {
	files, err := libcni.ConfFiles(n.cfg.CNIConfDir, []string{".conf", ".conflist", ".json"})
	if err != nil || len(files) == 0 {
		return false, "container runtime network not ready: NetworkPluginNotReady: no CNI configuration file in " + n.cfg.CNIConfDir
	}
	return true, ""
}

func (n *node) updateStatus(ctx context.Context) error {
	cur, err := n.client.CoreV1().Nodes().Get(ctx, n.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node %s: %w", n.cfg.NodeName, err)
	}
	ready, msg := n.networkReady()
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, message string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: message, LastHeartbeatTime: now, LastTransitionTime: now}
		for _, old := range cur.Status.Conditions {
			if old.Type == t && old.Status == s {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		return c
	}
	readyCond := cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "cnilab node role is posting ready status")
	if !ready {
		readyCond = cond(corev1.NodeReady, corev1.ConditionFalse, "KubeletNotReady", msg)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
	}
	st := cur.DeepCopy()
	st.Status.Capacity, st.Status.Allocatable = capacity, capacity
	st.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.cfg.NodeIP}, {Type: corev1.NodeHostName, Address: n.cfg.NodeName}}
	st.Status.Conditions = []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "cnilab node role has sufficient memory available"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "cnilab node role has no disk pressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "cnilab node role has sufficient PID available"),
		readyCond,
	}
	st.Status.NodeInfo = corev1.NodeSystemInfo{
		KernelVersion: kernelRelease(), OSImage: "cnilab lab node", OperatingSystem: "linux",
		Architecture: runtime.GOARCH, KubeletVersion: Version, ContainerRuntimeVersion: "cnilab://netns",
	}
	if _, err := n.client.CoreV1().Nodes().UpdateStatus(ctx, st, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update node %s status: %w", n.cfg.NodeName, err)
	}
	return nil
}

func (n *node) renewLease(ctx context.Context) error {
	leases := n.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, n.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		nodeObj, gerr := n.client.CoreV1().Nodes().Get(ctx, n.cfg.NodeName, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: n.cfg.NodeName, Namespace: corev1.NamespaceNodeLease,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: nodeObj.Name, UID: nodeObj.UID}}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(n.cfg.NodeName), LeaseDurationSeconds: ptr.To(int32(leaseDuration)), RenewTime: &now},
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// heartbeat renews the node lease and posts status, and posts at once when the
// network becomes ready so pods are scheduled without waiting a period.
func (n *node) heartbeat(ctx context.Context) {
	lease := time.NewTicker(leaseRenew)
	status := time.NewTicker(statusEvery)
	poll := time.NewTicker(networkPollTick)
	defer lease.Stop()
	defer status.Stop()
	defer poll.Stop()
	wasReady, _ := n.networkReady()
	if err := n.renewLease(ctx); err != nil {
		n.log.Warn("renew lease", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			if err := n.renewLease(ctx); err != nil {
				n.log.Warn("renew lease", "err", err)
			}
		case <-status.C:
			if err := n.updateStatus(ctx); err != nil {
				n.log.Warn("post node status", "err", err)
			}
		case <-poll.C:
			if ready, _ := n.networkReady(); ready != wasReady {
				wasReady = ready
				n.log.Info("network readiness changed", "ready", ready)
				if err := n.updateStatus(ctx); err != nil {
					n.log.Warn("post node status", "err", err)
				}
			}
		}
	}
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return strings.TrimRight(string(u.Release[:]), "\x00")
}
