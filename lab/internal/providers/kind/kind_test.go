package kind

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/cnilab/cnilab/lab/internal/kube"
	"github.com/cnilab/cnilab/manifests"
)

func TestClusterConfigDefaults(t *testing.T) {
	c := ClusterConfig(Options{Name: "e2e", CNI: "cnilab"})
	if c.Name != "cnilab-e2e" {
		t.Errorf("name %q", c.Name)
	}
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		t.Errorf("type %s %s", c.Kind, c.APIVersion)
	}
	n := c.Networking
	if !n.DisableDefaultCNI {
		t.Error("kind's default CNI is not disabled: kindnet would run beside the lab's CNI")
	}
	if n.PodSubnet != "10.244.0.0/16" || n.ServiceSubnet != "10.96.0.0/16" {
		t.Errorf("subnets pod %q service %q", n.PodSubnet, n.ServiceSubnet)
	}
	if n.KubeProxyMode != "" {
		t.Errorf("kube-proxy mode %q: want kind's default", n.KubeProxyMode)
	}
	var roles []v1alpha4.NodeRole
	for _, node := range c.Nodes {
		roles = append(roles, node.Role)
		if node.Image != "" {
			t.Errorf("node image %q: want kind's default", node.Image)
		}
	}
	if want := []v1alpha4.NodeRole{v1alpha4.ControlPlaneRole, v1alpha4.WorkerRole, v1alpha4.WorkerRole}; !reflect.DeepEqual(roles, want) {
		t.Errorf("roles %v, want %v", roles, want)
	}
}

func TestClusterConfigOptions(t *testing.T) {
	c := ClusterConfig(Options{Name: "big", Nodes: 5, NodeImage: "kindest/node:v1.36.0", PodSubnet: "10.200.0.0/16", ServiceSubnet: "10.100.0.0/16"})
	if len(c.Nodes) != 5 || c.Nodes[0].Role != v1alpha4.ControlPlaneRole {
		t.Fatalf("nodes %+v", c.Nodes)
	}
	for i, n := range c.Nodes[1:] {
		if n.Role != v1alpha4.WorkerRole {
			t.Errorf("node %d role %s", i+1, n.Role)
		}
	}
	for _, n := range c.Nodes {
		if n.Image != "kindest/node:v1.36.0" {
			t.Errorf("image %q", n.Image)
		}
	}
	if c.Networking.PodSubnet != "10.200.0.0/16" || c.Networking.ServiceSubnet != "10.100.0.0/16" {
		t.Errorf("networking %+v", c.Networking)
	}
	if one := ClusterConfig(Options{Name: "one", Nodes: 1}); len(one.Nodes) != 1 || one.Nodes[0].Role != v1alpha4.ControlPlaneRole {
		t.Errorf("one node: %+v", one.Nodes)
	}
	// kind's own defaulting keeps what the lab set.
	v1alpha4.SetDefaultsCluster(c)
	if !c.Networking.DisableDefaultCNI || c.Networking.PodSubnet != "10.200.0.0/16" {
		t.Errorf("after kind's defaults: %+v", c.Networking)
	}
}

func TestManifestsAndImagesPerCNI(t *testing.T) {
	for _, tc := range []struct {
		cni, mode string
		set       manifests.Set
		images    []string
	}{
		{"cnilab", "native", manifests.Cnilab, []string{manifests.DefaultProbeImage, manifests.DefaultImage}},
		{"cnilab-vxlan", "vxlan", manifests.Cnilab, []string{manifests.DefaultProbeImage, manifests.DefaultImage}},
		{"flannel", "", manifests.Flannel, []string{manifests.DefaultProbeImage}},
	} {
		o := Options{Name: "t", CNI: tc.cni}.withDefaults()
		m, err := manifestOptions(o)
		if err != nil {
			t.Fatalf("%s: %v", tc.cni, err)
		}
		if m.RoutingMode != tc.mode || !reflect.DeepEqual(m.Sets, []manifests.Set{tc.set}) || m.ClusterCIDR != "10.244.0.0/16" {
			t.Errorf("%s: manifests %+v", tc.cni, m)
		}
		objs, err := manifests.Render(m)
		if err != nil {
			t.Fatalf("%s: render: %v", tc.cni, err)
		}
		ds := 0
		for _, u := range objs {
			if u.GetKind() == "DaemonSet" {
				ds++
			}
		}
		if ds == 0 {
			t.Errorf("%s: no DaemonSet to wait for", tc.cni)
		}
		if got := images(o); !reflect.DeepEqual(got, tc.images) {
			t.Errorf("%s: images %v", tc.cni, got)
		}
	}
	if _, err := manifestOptions(Options{CNI: "existing"}); err == nil {
		t.Error("CNI existing has no manifests")
	}
	if err := (Options{Name: "t", CNI: "existing", Nodes: 3}).withDefaults().validate(); err == nil {
		t.Error("kind lab with CNI existing validated")
	}
	if err := (Options{Name: "Bad_Name", CNI: "cnilab"}).withDefaults().validate(); err == nil || !strings.Contains(err.Error(), "invalid lab name") {
		t.Errorf("bad name: %v", err)
	}
}

// dockerOrSkip skips a test that needs a Docker engine where none answers,
// saying why.
func dockerOrSkip(t *testing.T) {
	t.Helper()
	if err := DockerAvailable(context.Background()); err != nil {
		t.Skipf("skipped: needs a Docker engine to create a kind cluster, and none answers here: %v", err)
	}
}

func TestCreateWithoutDockerSaysWhy(t *testing.T) {
	if DockerAvailable(context.Background()) == nil {
		t.Skip("a Docker engine answers here: TestKindCluster covers creation")
	}
	_, err := Provider{StateDir: t.TempDir()}.Create(context.Background(), Options{Name: "nodocker", CNI: "flannel"})
	if err == nil || !strings.Contains(err.Error(), "Docker") {
		t.Fatalf("want an error about Docker, got %v", err)
	}
}

// TestKindCluster creates a real kind cluster with flannel (or the CNI in
// CNILAB_KIND_TEST_CNI), checks its nodes, exec in a pod and on a node, and
// deletes it. It needs a Docker engine and the images of `make images`.
func TestKindCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: creating a kind cluster takes minutes")
	}
	dockerOrSkip(t)
	cni := os.Getenv("CNILAB_KIND_TEST_CNI")
	if cni == "" {
		cni = "flannel"
	}
	o := Options{Name: "unit", Nodes: 2, CNI: cni}.withDefaults()
	if err := checkImages(context.Background(), images(o)); err != nil {
		t.Skipf("skipped: %v", err)
	}
	p := Provider{StateDir: t.TempDir(), Progress: testWriter{t}}
	_ = p.Delete(o.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c, err := p.Create(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Delete(o.Name); err != nil {
			t.Errorf("delete: %v", err)
		}
	})
	if n := c.Nodes(); len(n) != 2 || n[0].IP == "" || !n[0].Ready {
		t.Fatalf("nodes %+v", n)
	}
	if names, err := p.List(); err != nil || !slices.Contains(names, o.Name) {
		t.Errorf("list %v %v", names, err)
	}
	res, err := c.ExecNode(ctx, c.Nodes()[1].Name, []string{"cnilab-probe", "features"})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("exec on node: %+v %v", res, err)
	}
	var feats map[string]any
	if err := json.Unmarshal(res.Stdout, &feats); err != nil {
		t.Errorf("features %q: %v", res.Stdout, err)
	}
	// The node shell pod is a pod: exec into it as one.
	res, err = c.ExecPod(ctx, ShellNamespace, kube.PodName(c.Nodes()[1].Name), []string{"cnilab-probe", "features"})
	if err != nil || res.ExitCode != 0 {
		t.Errorf("exec in pod: %+v %v", res, err)
	}
	again, err := p.Get(o.Name)
	if err != nil || again.CNI() != cni || len(again.Nodes()) != 2 {
		t.Errorf("get: %+v %v", again, err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
