package manifests

import (
	"cmp"
	"embed"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The charts under charts/: the source of the cnilab and flannel sets, for
// `cnilab install`, the lab and `helm` alike.
//
//go:embed all:charts
var charts embed.FS

// Chart names (directories of charts/).
const (
	CnilabChart  = "cnilab"
	FlannelChart = "flannel"
)

// NoScheduleLabel on a node keeps the cnilab agent off it: the chart's
// default node affinity (values.yaml affinity) excludes nodes where it is
// "true".
const NoScheduleLabel = "cnilab.io/no-schedule"

// FlannelNamespace is the flannel baseline's namespace, as upstream's
// kube-flannel manifest names it.
const FlannelNamespace = "kube-flannel"

// ChartRelease names a chart's release: the chart, its values (over the
// chart's values.yaml) and the namespace it goes to.
type ChartRelease struct {
	Chart     string
	Namespace string
	Values    map[string]any
}

// LoadChart loads an embedded chart by name.
func LoadChart(name string) (*chart.Chart, error) {
	root := "charts/" + name
	var files []*archive.BufferedFile
	err := fs.WalkDir(charts, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := charts.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, &archive.BufferedFile{Name: strings.TrimPrefix(p, root+"/"), Data: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("manifests: chart %q: %w", name, err)
	}
	c, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("manifests: chart %q: %w", name, err)
	}
	return c, nil
}

// RenderChart renders a release as `helm template` does: the values merged
// over the chart's own and checked against its values.schema.json, every
// template executed strictly (a missing value is an error). It returns the
// objects in apply order (namespaces, then identities and RBAC, then
// configuration, then workloads), templates in name order within a kind.
func RenderChart(r ChartRelease) ([]*unstructured.Unstructured, error) {
	c, err := LoadChart(r.Chart)
	if err != nil {
		return nil, err
	}
	vals, err := util.ToRenderValuesWithSchemaValidation(c, r.Values,
		common.ReleaseOptions{Name: r.Chart, Namespace: r.Namespace, IsInstall: true}, nil, false)
	if err != nil {
		return nil, fmt.Errorf("manifests: chart %s: %w", r.Chart, err)
	}
	out, err := engine.Engine{Strict: true}.Render(c, vals)
	if err != nil {
		return nil, fmt.Errorf("manifests: chart %s: %w", r.Chart, err)
	}
	names := make([]string, 0, len(out))
	for name := range out {
		if base := path.Base(name); path.Ext(base) == ".yaml" && !strings.HasPrefix(base, "_") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var objs []*unstructured.Unstructured
	for _, name := range names {
		o, err := decode(name, []byte(out[name]))
		if err != nil {
			return nil, err
		}
		objs = append(objs, o...)
	}
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		return cmp.Compare(kindRank(a.GetKind()), kindRank(b.GetKind()))
	})
	return objs, nil
}

// applyOrder ranks kinds as they must reach the API server: what others
// live in or refer to first. Kinds not listed come last.
var applyOrder = []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap", "Service"}

func kindRank(kind string) int {
	if i := slices.Index(applyOrder, kind); i >= 0 {
		return i
	}
	return len(applyOrder)
}

// chartRelease is the release of a chart-backed set for defaulted options.
func (o Options) chartRelease(set Set) (ChartRelease, bool) {
	switch set {
	case Cnilab:
		host, port := "", 6443
		if o.APIServer != "" {
			host, port = splitHostPort(o.APIServer)
		}
		mhost, mport := splitHostPort(MetricsAddress)
		return ChartRelease{Chart: CnilabChart, Namespace: o.Namespace, Values: map[string]any{
			"image":             o.Image,
			"imagePullPolicy":   o.ImagePullPolicy,
			"routingMode":       o.RoutingMode,
			"clusterCIDR":       o.ClusterCIDR,
			"serviceCIDR":       o.ServiceCIDR,
			"underlayDevice":    o.UnderlayDevice,
			"k8sServiceHost":    host,
			"k8sServicePort":    port,
			"metrics":           map[string]any{"host": mhost, "port": mport},
			"memlockCapability": !o.NoMemlockCapability,
		}}, true
	case Flannel:
		return ChartRelease{Chart: FlannelChart, Namespace: FlannelNamespace, Values: map[string]any{
			"image":            o.FlannelImage,
			"cniPluginImage":   o.FlannelCNIPluginImage,
			"imagePullPolicy":  o.ImagePullPolicy,
			"clusterCIDR":      o.ClusterCIDR,
			"iface":            o.FlannelIface,
			"installCNIPlugin": !o.FlannelNoCNIPlugin,
		}}, true
	}
	return ChartRelease{}, false
}

// splitHostPort splits a validated "host:port".
func splitHostPort(addr string) (string, int) {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return host, n
}

// WriteChart writes an embedded chart's files under dir/name, where `helm
// lint` and `helm template` can read them; dir/name must not exist.
func WriteChart(name, dir string) error {
	sub, err := fs.Sub(charts, "charts/"+name)
	if err != nil {
		return fmt.Errorf("manifests: chart %q: %w", name, err)
	}
	if _, err := fs.Stat(sub, "Chart.yaml"); err != nil {
		return fmt.Errorf("manifests: no chart %q", name)
	}
	if err := os.CopyFS(filepath.Join(dir, name), sub); err != nil {
		return fmt.Errorf("manifests: write chart %q: %w", name, err)
	}
	return nil
}
