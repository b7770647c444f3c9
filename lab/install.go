package lab

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cnilab/cnilab/lab/internal/kube"
)

// ApplyManifests server-side applies objs (as manifests.Render returns
// them) to the cluster of kubeconfig, as `kubectl apply --server-side`
// would; with dryRun the API server checks every object and keeps none.
func ApplyManifests(ctx context.Context, kubeconfig string, objs []*unstructured.Unstructured, dryRun bool) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return kube.ApplyWith(ctx, rc, objs, dryRun)
}
