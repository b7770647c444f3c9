package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	pol "github.com/cnilab/cnilab/e2e/policy"
	"github.com/cnilab/cnilab/manifests"
)

// manifestsFieldManager owns the dry-run applies (and the namespaces the
// spec creates for them).
const manifestsFieldManager = "cnilab-e2e-manifests"

// The deployable manifests (manifests/) against the lab's real API server:
// every object, server-side applied with dryRun=All, as `kubectl apply
// --server-side --dry-run=server` would. Validation, defaulting and
// admission run; nothing is stored.
var _ = Describe("Manifests", Label("manifests"), func() {
	It("match the suite's standard model and probe image", func() {
		Expect(manifests.DefaultProbeImage).To(Equal(ProbeImage))
		objs, err := manifests.Render(manifests.Options{Sets: []manifests.Set{manifests.Workload}})
		Expect(err).NotTo(HaveOccurred())
		m := pol.NewStandardModel()
		var want, got []string
		for _, p := range m.Pods {
			want = append(want, p.Key())
		}
		for _, u := range objs {
			if u.GetKind() == "Pod" {
				got = append(got, u.GetNamespace()+"/"+u.GetName())
				Expect(u.GetLabels()).To(HaveKeyWithValue(pol.PodLabel, u.GetName()), "pod %s", manifests.Ref(u))
			}
		}
		Expect(got).To(Equal(want))
	})

	It("are accepted by the API server (server-side apply, dry run)", func(ctx SpecContext) {
		rc, err := clientcmd.BuildConfigFromFlags("", cluster.Kubeconfig())
		Expect(err).NotTo(HaveOccurred())
		dyn, err := dynamic.NewForConfig(rc)
		Expect(err).NotTo(HaveOccurred())
		disc, err := discovery.NewDiscoveryClientForConfig(rc)
		Expect(err).NotTo(HaveOccurred())
		groups, err := restmapper.GetAPIGroupResources(disc)
		Expect(err).NotTo(HaveOccurred())
		mapper := restmapper.NewDiscoveryRESTMapper(groups)

		// The defaults, and vxlan with every optional branch of the
		// templates on; messages name the variant.
		type rendered struct {
			variant string
			obj     *unstructured.Unstructured
		}
		var objs []rendered
		for variant, o := range map[string]manifests.Options{
			"defaults": {},
			"vxlan":    {RoutingMode: "vxlan", WorkloadSCTP: true, APIServer: "172.30.0.1:6443"},
		} {
			r, err := manifests.Render(o)
			Expect(err).NotTo(HaveOccurred())
			for _, u := range r {
				objs = append(objs, rendered{variant, u})
			}
		}

		apply := func(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
			gvk := u.GroupVersionKind()
			mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				return fmt.Errorf("the API server does not serve %s: %w", gvk, err)
			}
			var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
			if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
				ri = dyn.Resource(mapping.Resource).Namespace(u.GetNamespace())
			}
			opts := metav1.ApplyOptions{FieldManager: manifestsFieldManager, Force: true}
			if dryRun {
				opts.DryRun = []string{metav1.DryRunAll}
			}
			_, err = ri.Apply(ctx, u.GetName(), u, opts)
			return err
		}

		// Namespaces first, dry run: as a creation where they do not exist.
		var rejected []string
		namespaces := map[string]*unstructured.Unstructured{}
		for _, r := range objs {
			if r.obj.GetKind() != "Namespace" {
				continue
			}
			namespaces[r.obj.GetName()] = r.obj
			if err := apply(ctx, r.obj, true); err != nil {
				rejected = append(rejected, fmt.Sprintf("[%s] %s: %v", r.variant, manifests.Ref(r.obj), err))
			}
		}
		// The API server admits nothing into a namespace that does not
		// exist, dry run or not: create the missing ones for real (and only
		// those), and remove them afterwards.
		for _, name := range slices.Sorted(maps.Keys(namespaces)) {
			_, err := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			if err == nil {
				continue
			}
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "get namespace %s: %v", name, err)
			// Made for real, so labelled as the suite's (DeleteNamespace
			// removes only those).
			own := namespaces[name].DeepCopy()
			l := own.GetLabels()
			if l == nil {
				l = map[string]string{}
			}
			maps.Copy(l, NamespaceLabels)
			own.SetLabels(l)
			Expect(apply(ctx, own, false)).To(Succeed(), "create %s", manifests.Ref(own))
			DeferCleanup(func(ctx SpecContext) {
				Expect(DeleteNamespace(ctx, client, name, 2*time.Minute)).To(Succeed())
			}, NodeTimeout(3*time.Minute))
			// Pods need the namespace's default service account.
			Eventually(func(ctx context.Context) error {
				_, err := client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
				return err
			}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed(), "service account %s/default", name)
		}

		applied := 0
		for _, r := range objs {
			if r.obj.GetKind() == "Namespace" {
				continue
			}
			if err := apply(ctx, r.obj, true); err != nil {
				rejected = append(rejected, fmt.Sprintf("[%s] %s: %v", r.variant, manifests.Ref(r.obj), err))
				continue
			}
			applied++
		}
		GinkgoWriter.Printf("dry-run applied %d objects and %d namespaces\n", applied, len(namespaces))
		if len(rejected) > 0 {
			slices.Sort(rejected)
			Fail(fmt.Sprintf("the API server rejected %d of %d objects:\n  %s", len(rejected), len(objs), strings.Join(rejected, "\n  ")))
		}
	}, NodeTimeout(5*time.Minute))
})
