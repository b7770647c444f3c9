package kube

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// FieldManager owns the fields cnilab applies.
const FieldManager = "cnilab"

// Apply server-side applies objs in order (namespaces first, as
// manifests.Render returns them), as `kubectl apply --server-side
// --force-conflicts` would.
func Apply(ctx context.Context, rc *rest.Config, objs []*unstructured.Unstructured) error {
	return ApplyWith(ctx, rc, objs, false)
}

// ApplyWith is Apply; with dryRun the API server validates, defaults and
// admits every object without persisting any (dryRun=All).
func ApplyWith(ctx context.Context, rc *rest.Config, objs []*unstructured.Unstructured, dryRun bool) error {
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("apply: dynamic client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return fmt.Errorf("apply: discovery client: %w", err)
	}
	groups, err := restmapper.GetAPIGroupResources(disc)
	if err != nil {
		return fmt.Errorf("apply: discover the API: %w", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("apply %s %s: the API server does not serve it: %w", gvk.Kind, u.GetName(), err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
		if dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		if _, err := ri.Apply(ctx, u.GetName(), u, opts); err != nil {
			return fmt.Errorf("apply %s %s/%s: %w", gvk.Kind, u.GetNamespace(), u.GetName(), err)
		}
	}
	return nil
}

// WaitDaemonSet waits until the DaemonSet's current generation is rolled out
// and every scheduled pod of it is ready.
func WaitDaemonSet(ctx context.Context, c kubernetes.Interface, namespace, name string, timeout time.Duration) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		ds, err := c.AppsV1().DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		ok, why := DaemonSetReady(ds)
		last = why
		return ok, nil
	})
	if err != nil {
		return fmt.Errorf("DaemonSet %s/%s not ready after %s: %s", namespace, name, timeout, last)
	}
	return nil
}

// DaemonSetReady says whether a DaemonSet is rolled out and ready, and if
// not, why.
func DaemonSetReady(ds *appsv1.DaemonSet) (bool, string) {
	st := ds.Status
	switch {
	case st.ObservedGeneration < ds.Generation:
		return false, fmt.Sprintf("generation %d not observed yet", ds.Generation)
	case st.DesiredNumberScheduled == 0:
		return false, "no pods scheduled yet"
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		return false, fmt.Sprintf("%d of %d pods updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
	case st.NumberReady < st.DesiredNumberScheduled:
		return false, fmt.Sprintf("%d of %d pods ready", st.NumberReady, st.DesiredNumberScheduled)
	}
	return true, ""
}
