// Package manifests holds cnilab's Kubernetes manifests and renders them with
// parameters:
//
//   - cnilab: the agent's DaemonSet (with the init container that installs
//     the cnilab-cni plugin on the host), its ServiceAccount, least-privilege
//     RBAC and ConfigMap (routing mode, cluster CIDR);
//   - flannel: the flannel baseline as upstream's kube-flannel manifest runs
//     it (flanneld --kube-subnet-mgr, vxlan), upstream images pinned by tag;
//   - workload: the standard model of the policy suite (namespaces x, y, z;
//     pods a, b, c serving 80 and 81 with named ports) on cnilab-probe;
//   - kube-proxy: kube-proxy in iptables mode as kubeadm deploys it (only
//     when asked for: it needs the API server's address).
//
// cnilab and flannel are Helm charts (charts/cnilab, charts/flannel: the
// source `helm template` reads too), rendered with Helm's own engine and
// values schema; the lab's other sets are text/template templates. All are
// embedded in the binary; Render returns the objects in apply order
// (namespaces first).
package manifests

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The sets that are not charts: text/template templates.
//
//go:embed coredns/*.yaml kube-proxy/*.yaml workload/*.yaml
var files embed.FS

// Set is one group of manifests: a directory of this package.
type Set string

// The sets, in the order Render returns them.
const (
	Cnilab   Set = "cnilab"   // the cnilab datapath: agent DaemonSet, RBAC, ConfigMap
	Flannel  Set = "flannel"  // the flannel baseline
	Workload Set = "workload" // the standard model's namespaces and pods
	// KubeProxy is kube-proxy (iptables mode) as kubeadm deploys it; it
	// needs Options.APIServer and is rendered only when asked for.
	KubeProxy Set = "kube-proxy"
	// CoreDNS is the cluster's DNS as kubeadm deploys it (the kube-dns
	// Service at ClusterDNS), answering for the cluster domain only; it is
	// rendered only when asked for.
	CoreDNS Set = "coredns"
)

// AllSets lists every set in render order.
var AllSets = []Set{KubeProxy, CoreDNS, Cnilab, Flannel, Workload}

// DefaultSets are the sets rendered when Options.Sets is empty.
var DefaultSets = []Set{Cnilab, Flannel, Workload}

// Defaults of Options.
const (
	DefaultNamespace      = "kube-system"
	DefaultRoutingMode    = "native"
	DefaultClusterCIDR    = "10.244.0.0/16"
	DefaultServiceCIDR    = "10.96.0.0/12"
	DefaultUnderlayDevice = "eth0"
	// DefaultImage and DefaultProbeImage are what `make images` tags
	// (IMAGE_TAG=dev); e2e.ProbeImage is the same name.
	DefaultImage      = "cnilab/cnilab:dev"
	DefaultProbeImage = "cnilab/cnilab-probe:dev"
	// DefaultFlannelImage is the flanneld release tools/flannel builds for
	// the lab (v0.28.10), from upstream's registry.
	DefaultFlannelImage = "ghcr.io/flannel-io/flannel:v0.28.10"
	// DefaultFlannelCNIPluginImage is flannel's CNI plugin as upstream's
	// kube-flannel manifest of the v0.28 releases pins it.
	DefaultFlannelCNIPluginImage = "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3"
	DefaultImagePullPolicy       = "IfNotPresent"
	// DefaultKubeProxyImage is the kube-proxy of the Kubernetes release
	// tools/kubernetes builds (make images builds it under this name).
	DefaultKubeProxyImage = "registry.k8s.io/kube-proxy:v1.37.2"
	// DefaultCoreDNSImage is kubeadm 1.37's CoreDNS (make images builds it).
	DefaultCoreDNSImage = "registry.k8s.io/coredns/coredns:v1.14.6"
	// DefaultClusterDomain is the cluster's DNS domain.
	DefaultClusterDomain = "cluster.local"
)

// MetricsAddress is where the agent serves /metrics on its node (its
// --metrics-address); the DaemonSet's probes use it.
const MetricsAddress = "127.0.0.1:9962"

// Options parameterise the manifests. The zero value renders every set with
// the defaults.
type Options struct {
	// Sets to render; empty means all of them.
	Sets []Set
	// Namespace of cnilab's objects (default kube-system, where
	// system-node-critical pods belong).
	Namespace string
	// RoutingMode between nodes: native or vxlan (default native).
	RoutingMode string
	// ClusterCIDR is the pod network the nodes' PodCIDRs come from; it is
	// also flannel's Network (default 10.244.0.0/16).
	ClusterCIDR string
	// ServiceCIDR is the cluster's Service network (kube-apiserver
	// --service-cluster-ip-range; default 10.96.0.0/12): the agent hands
	// pods' packets to it to the node's stack (kube-proxy) and checks their
	// policy after translation.
	ServiceCIDR string
	// UnderlayDevice is each node's device toward the other nodes (default
	// eth0, as on kind nodes and lab VMs).
	UnderlayDevice string
	// Images. Image is the cnilab image (images/cnilab), ProbeImage the
	// workload's (images/cnilab-probe).
	Image, ProbeImage            string
	KubeProxyImage, CoreDNSImage string
	// ClusterDNS is the kube-dns Service's address (the kubelets'
	// clusterDNS), in ServiceCIDR (default: its tenth address, as kubeadm
	// picks it); ClusterDomain the cluster's DNS domain (cluster.local).
	ClusterDNS, ClusterDomain           string
	FlannelImage, FlannelCNIPluginImage string
	// FlannelIface is flanneld's --iface (empty: flanneld picks the device
	// of the default route, which lab nodes do not have).
	FlannelIface string
	// FlannelNoCNIPlugin leaves out the init containers that install
	// flannel's CNI plugin and its conflist (the plugin's image is not built
	// here); whoever deploys writes the node's conflist from subnet.env.
	FlannelNoCNIPlugin bool
	// ImagePullPolicy of every container (default IfNotPresent, which also
	// uses images loaded into kind nodes).
	ImagePullPolicy string
	// APIServer is "host:port" of the API server for the agents, for
	// clusters where the kubernetes Service is not reachable from the host
	// network (no kube-proxy). Empty: the in-cluster Service.
	APIServer string
	// NoMemlockCapability leaves CAP_SYS_RESOURCE out of the agent's
	// capabilities. The agent needs it only to lift RLIMIT_MEMLOCK on
	// kernels before 5.11; a node whose runtime cannot grant it (its
	// bounding set lacks it) refuses to start a container that asks.
	NoMemlockCapability bool
	// WorkloadSCTP adds SCTP on 80 and 81 to the workload pods (the nodes'
	// kernels need SCTP).
	WorkloadSCTP bool
}

// model is the standard model as the workload templates use it.
type model struct {
	Namespaces []string
	Pods       []string
	Ports      []int32
	Protocols  []string // lower case, as in the port names
}

// PortList is "80,81".
func (m model) PortList() string {
	s := make([]string, len(m.Ports))
	for i, p := range m.Ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

// data is what the templates see.
type data struct {
	Options
	APIServerHost, APIServerPort string
	Model                        model
}

// withDefaults fills the empty fields.
func (o Options) withDefaults() Options {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	if len(o.Sets) == 0 {
		o.Sets = DefaultSets
	}
	def(&o.Namespace, DefaultNamespace)
	def(&o.RoutingMode, DefaultRoutingMode)
	def(&o.ClusterCIDR, DefaultClusterCIDR)
	def(&o.ServiceCIDR, DefaultServiceCIDR)
	def(&o.UnderlayDevice, DefaultUnderlayDevice)
	def(&o.Image, DefaultImage)
	def(&o.ProbeImage, DefaultProbeImage)
	def(&o.FlannelImage, DefaultFlannelImage)
	def(&o.FlannelCNIPluginImage, DefaultFlannelCNIPluginImage)
	def(&o.ImagePullPolicy, DefaultImagePullPolicy)
	def(&o.KubeProxyImage, DefaultKubeProxyImage)
	def(&o.CoreDNSImage, DefaultCoreDNSImage)
	def(&o.ClusterDNS, DefaultClusterDNS(o.ServiceCIDR))
	def(&o.ClusterDomain, DefaultClusterDomain)
	return o
}

// DefaultClusterDNS is the tenth address of an IPv4 Service network, where
// kubeadm puts the kube-dns Service ("" if cidr does not parse).
func DefaultClusterDNS(cidr string) string {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return ""
	}
	a := p.Masked().Addr().As4()
	a[3] += 10
	return netip.AddrFrom4(a).String()
}

// validate names the first bad field of defaulted options.
func (o Options) validate() error {
	for _, s := range o.Sets {
		if !slices.Contains(AllSets, s) {
			return fmt.Errorf("manifests: unknown set %q (sets: cnilab, flannel, workload)", s)
		}
	}
	if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return fmt.Errorf("manifests: namespace %q: %s", o.Namespace, strings.Join(errs, "; "))
	}
	if o.RoutingMode != "native" && o.RoutingMode != "vxlan" {
		return fmt.Errorf("manifests: routing mode %q: want native or vxlan", o.RoutingMode)
	}
	p, err := netip.ParsePrefix(o.ClusterCIDR)
	if err != nil || !p.Addr().Is4() || p != p.Masked() {
		return fmt.Errorf("manifests: cluster CIDR %q: want an IPv4 network such as 10.244.0.0/16", o.ClusterCIDR)
	}
	svc, err := netip.ParsePrefix(o.ServiceCIDR)
	if err != nil || !svc.Addr().Is4() || svc != svc.Masked() {
		return fmt.Errorf("manifests: service CIDR %q: want an IPv4 network such as 10.96.0.0/12", o.ServiceCIDR)
	}
	if dns, err := netip.ParseAddr(o.ClusterDNS); slices.Contains(o.Sets, CoreDNS) && (err != nil || !svc.Contains(dns)) {
		return fmt.Errorf("manifests: cluster DNS address %q: want an address in the service CIDR %s", o.ClusterDNS, o.ServiceCIDR)
	}
	if errs := validation.IsDNS1123Subdomain(o.ClusterDomain); len(errs) > 0 {
		return fmt.Errorf("manifests: cluster domain %q: %s", o.ClusterDomain, strings.Join(errs, "; "))
	}
	for _, dev := range []string{o.UnderlayDevice, o.FlannelIface} {
		if len(dev) > 15 || strings.ContainsAny(dev, "/ \t\n:\"") {
			return fmt.Errorf("manifests: device %q is not a network device name", dev)
		}
	}
	for name, img := range map[string]string{"image": o.Image, "probe image": o.ProbeImage,
		"flannel image": o.FlannelImage, "flannel CNI plugin image": o.FlannelCNIPluginImage, "kube-proxy image": o.KubeProxyImage, "CoreDNS image": o.CoreDNSImage} {
		if strings.ContainsAny(img, " \t\n\"'") {
			return fmt.Errorf("manifests: %s %q is not an image reference", name, img)
		}
	}
	switch o.ImagePullPolicy {
	case "Always", "IfNotPresent", "Never":
	default:
		return fmt.Errorf("manifests: image pull policy %q: want Always, IfNotPresent or Never", o.ImagePullPolicy)
	}
	if slices.Contains(o.Sets, KubeProxy) && o.APIServer == "" {
		return errors.New("manifests: the kube-proxy set needs the API server's address (APIServer): kube-proxy cannot reach it through the Service it programs")
	}
	if o.APIServer != "" {
		host, port, err := net.SplitHostPort(o.APIServer)
		if err != nil || host == "" {
			return fmt.Errorf("manifests: API server %q: want host:port", o.APIServer)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("manifests: API server %q: bad port", o.APIServer)
		}
	}
	return nil
}

func (o Options) data() data {
	d := data{Options: o, Model: model{
		Namespaces: []string{"x", "y", "z"},
		Pods:       []string{"a", "b", "c"},
		Ports:      []int32{80, 81},
		Protocols:  []string{"tcp", "udp"},
	}}
	if o.WorkloadSCTP {
		d.Model.Protocols = append(d.Model.Protocols, "sctp")
	}
	if o.APIServer != "" {
		d.APIServerHost, d.APIServerPort, _ = net.SplitHostPort(o.APIServer)
	}
	return d
}

var funcs = template.FuncMap{
	// quote makes a YAML double-quoted scalar (JSON strings are YAML).
	"quote": func(v any) (string, error) {
		b, err := json.Marshal(fmt.Sprint(v))
		return string(b), err
	},
	"upper": strings.ToUpper,
}

// clusterScoped are the kinds in these manifests without a namespace.
var clusterScoped = map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true}

// Render executes the templates of the chosen sets and returns their objects:
// set by set, file by file in name order, document by document, which puts
// namespaces before what lives in them.
func Render(opts Options) ([]*unstructured.Unstructured, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	d := o.data()
	var out []*unstructured.Unstructured
	for _, set := range AllSets {
		if !slices.Contains(o.Sets, set) {
			continue
		}
		if r, ok := o.chartRelease(set); ok {
			objs, err := RenderChart(r)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
			continue
		}
		names, err := Files(set)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			objs, err := renderFile(name, d)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
	}
	return out, nil
}

// Files lists the embedded template files of a set that is not a chart, in
// render order.
func Files(set Set) ([]string, error) {
	names, err := fs.Glob(files, string(set)+"/*.yaml")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("manifests: no files in set %q", set)
	}
	slices.Sort(names)
	return names, nil
}

func renderFile(name string, d data) ([]*unstructured.Unstructured, error) {
	text, err := files.ReadFile(name)
	if err != nil {
		return nil, err
	}
	t, err := template.New(path.Base(name)).Option("missingkey=error").Funcs(funcs).Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("manifests: %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("manifests: %s: %w", name, err)
	}
	return decode(name, buf.Bytes())
}

// decode splits a rendered file into objects; documents that hold only
// comments are skipped.
func decode(name string, b []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for i := 1; ; i++ {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("manifests: %s document %d: %w", name, i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if err := check(u); err != nil {
			return nil, fmt.Errorf("manifests: %s document %d: %w", name, i, err)
		}
		out = append(out, u)
	}
}

func check(u *unstructured.Unstructured) error {
	switch {
	case u.GetAPIVersion() == "" || u.GetKind() == "":
		return errors.New("apiVersion or kind missing")
	case u.GetName() == "":
		return fmt.Errorf("%s without a name", u.GetKind())
	case clusterScoped[u.GetKind()] && u.GetNamespace() != "":
		return fmt.Errorf("%s %s is cluster-scoped but has namespace %q", u.GetKind(), u.GetName(), u.GetNamespace())
	case !clusterScoped[u.GetKind()] && u.GetNamespace() == "":
		return fmt.Errorf("%s %s has no namespace", u.GetKind(), u.GetName())
	}
	return nil
}

// Ref names an object for messages: "DaemonSet kube-system/cnilab-agent".
func Ref(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetKind() + " " + u.GetName()
	}
	return u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
}
