// Package kind is the lab provider whose clusters are kind clusters
// (Kubernetes nodes in Docker containers), made with the sigs.k8s.io/kind
// library: kind's default CNI is disabled, the cnilab images are loaded into
// the nodes, the CNI's manifests (package manifests) are server-side applied
// with client-go, and the provider waits for the CNI's DaemonSets and every
// node to be Ready. A bring-up that fails deletes the cluster unless asked
// to retain it.
package kind

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/manifests"
)

// Name is the provider's name.
const Name = "kind"

// ClusterPrefix starts the name of every kind cluster the provider makes:
// lab NAME is kind cluster cnilab-NAME (node containers
// cnilab-NAME-control-plane, cnilab-NAME-worker, …).
const ClusterPrefix = "cnilab-"

// ClusterName is the kind cluster of lab name.
func ClusterName(lab string) string { return ClusterPrefix + lab }

// Options describe a kind lab.
type Options struct {
	// Name of the lab.
	Name string
	// Nodes: one control plane and Nodes-1 workers (default 3).
	Nodes int
	// CNI: cnilab, cnilab-vxlan or flannel.
	CNI string
	// NodeImage is the kindest/node image ("" is the kind release's).
	NodeImage string
	// PodSubnet and ServiceSubnet (defaults 10.244.0.0/16, 10.96.0.0/16).
	PodSubnet, ServiceSubnet string
	// Image and ProbeImage are the cnilab and cnilab-probe images to load
	// (defaults: the manifests', what `make images` tags).
	Image, ProbeImage string
	// Retain keeps the cluster when the bring-up fails.
	Retain bool
}

// withDefaults fills the empty fields.
func (o Options) withDefaults() Options {
	if o.Nodes == 0 {
		o.Nodes = config.DefaultKindNodes
	}
	if o.PodSubnet == "" {
		o.PodSubnet = config.DefaultClusterCIDR
	}
	if o.ServiceSubnet == "" {
		o.ServiceSubnet = config.DefaultServiceCIDR
	}
	if o.Image == "" {
		o.Image = manifests.DefaultImage
	}
	if o.ProbeImage == "" {
		o.ProbeImage = manifests.DefaultProbeImage
	}
	return o
}

// validate checks what the provider needs of the options.
func (o Options) validate() error {
	c := config.Default()
	c.Provider, c.Name, c.CNI, c.Nodes, c.ClusterCIDR, c.ServiceCIDR = Name, o.Name, o.CNI, o.Nodes, o.PodSubnet, o.ServiceSubnet
	if err := c.Validate(); err != nil {
		return fmt.Errorf("kind lab: %w", err)
	}
	return nil
}

// ClusterConfig is the kind cluster configuration of a lab: kind's default
// CNI (kindnet) disabled so the lab's CNI is the only one, the pod and
// service subnets set, one control-plane node and Nodes-1 workers, kube-proxy
// left in kind's default mode.
func ClusterConfig(o Options) *v1alpha4.Cluster {
	o = o.withDefaults()
	c := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Name:     ClusterName(o.Name),
		Networking: v1alpha4.Networking{
			DisableDefaultCNI: true,
			PodSubnet:         o.PodSubnet,
			ServiceSubnet:     o.ServiceSubnet,
		},
	}
	for i := 0; i < max(o.Nodes, 1); i++ {
		role := v1alpha4.WorkerRole
		if i == 0 {
			role = v1alpha4.ControlPlaneRole
		}
		c.Nodes = append(c.Nodes, v1alpha4.Node{Role: role, Image: o.NodeImage})
	}
	return c
}

// manifestOptions renders the CNI's manifests for the lab.
func manifestOptions(o Options) (manifests.Options, error) {
	m := manifests.Options{ClusterCIDR: o.PodSubnet, Image: o.Image, ProbeImage: o.ProbeImage}
	switch o.CNI {
	case "cnilab":
		m.Sets, m.RoutingMode = []manifests.Set{manifests.Cnilab}, "native"
	case "cnilab-vxlan":
		m.Sets, m.RoutingMode = []manifests.Set{manifests.Cnilab}, "vxlan"
	case "flannel":
		m.Sets = []manifests.Set{manifests.Flannel}
	default:
		return m, fmt.Errorf("kind lab: CNI %q has no manifests: use cnilab, cnilab-vxlan or flannel", o.CNI)
	}
	return m, nil
}

// images are the images the lab's nodes need loaded: the probe image of the
// suite's pods and node shells, and cnilab's for the cnilab CNIs (flannel's
// images are pulled from their registry by the nodes).
func images(o Options) []string {
	out := []string{o.ProbeImage}
	if strings.HasPrefix(o.CNI, "cnilab") {
		out = append(out, o.Image)
	}
	return out
}
