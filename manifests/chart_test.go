package manifests_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cnilab/cnilab/manifests"
)

// chartValues are complete values for a chart, as its values.yaml holds them.
func chartValues(chart string) map[string]any {
	if chart == manifests.FlannelChart {
		return map[string]any{"clusterCIDR": "10.244.0.0/16"}
	}
	return map[string]any{"routingMode": "native", "clusterCIDR": "10.244.0.0/16", "serviceCIDR": "10.96.0.0/12"}
}

func TestChartsLoad(t *testing.T) {
	for _, name := range []string{manifests.CnilabChart, manifests.FlannelChart} {
		c, err := manifests.LoadChart(name)
		if err != nil {
			t.Fatalf("LoadChart(%s): %v", name, err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("chart %s: %v", name, err)
		}
		if c.Schema == nil {
			t.Errorf("chart %s has no values.schema.json", name)
		}
		if c.Metadata.Name != name {
			t.Errorf("chart %s is named %q in Chart.yaml", name, c.Metadata.Name)
		}
	}
	if _, err := manifests.LoadChart("calico"); err == nil {
		t.Error("LoadChart(calico): no error for a chart that does not exist")
	}
}

// The chart's own defaults render what Render renders for the zero Options:
// values.yaml and the Go defaults agree.
func TestChartDefaultsMatchOptions(t *testing.T) {
	for _, tc := range []struct {
		set   manifests.Set
		chart string
		ns    string
	}{
		{manifests.Cnilab, manifests.CnilabChart, manifests.DefaultNamespace},
		{manifests.Flannel, manifests.FlannelChart, manifests.FlannelNamespace},
	} {
		fromChart, err := manifests.RenderChart(manifests.ChartRelease{Chart: tc.chart, Namespace: tc.ns})
		if err != nil {
			t.Fatalf("%s: %v", tc.chart, err)
		}
		fromOptions, err := manifests.Render(manifests.Options{Sets: []manifests.Set{tc.set}})
		if err != nil {
			t.Fatalf("%s: %v", tc.set, err)
		}
		if len(fromChart) != len(fromOptions) {
			t.Fatalf("%s: %d objects from the chart's defaults, %d from Options{}", tc.chart, len(fromChart), len(fromOptions))
		}
		for i := range fromChart {
			a, b := fromChart[i], fromOptions[i]
			if manifests.Ref(a) != manifests.Ref(b) {
				t.Errorf("%s object %d: %s from the chart, %s from Options{}", tc.chart, i, manifests.Ref(a), manifests.Ref(b))
				continue
			}
			if !reflect.DeepEqual(a.Object, b.Object) {
				t.Errorf("%s: %s differs between the chart's defaults and Options{}", tc.chart, manifests.Ref(a))
			}
		}
	}
}

func TestChartRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		chart, key string
		value      any
		want       string
	}{
		{manifests.CnilabChart, "routingMode", "geneve", "'/routingMode': value must be one of 'native', 'vxlan'"},
		{manifests.CnilabChart, "clusterCIDR", "10.244.0.0", `clusterCIDR "10.244.0.0" is not an IPv4 network`},
		{manifests.CnilabChart, "serviceCIDR", "10.96.0.0/33", `serviceCIDR "10.96.0.0/33" is not an IPv4 network`},
		{manifests.CnilabChart, "underlayDevice", "eth0/1", "'/underlayDevice'"},
		{manifests.CnilabChart, "imagePullPolicy", "Sometimes", "'/imagePullPolicy'"},
		{manifests.CnilabChart, "k8sServicePort", 70000, "'/k8sServicePort'"},
		{manifests.CnilabChart, "routingMod", "native", "additional properties 'routingMod' not allowed"},
		{manifests.FlannelChart, "clusterCIDR", "fd00::/64", `clusterCIDR "fd00::/64" is not an IPv4 network`},
		{manifests.FlannelChart, "iface", "a very long device name", "'/iface'"},
	} {
		vals := chartValues(tc.chart)
		vals[tc.key] = tc.value
		_, err := manifests.RenderChart(manifests.ChartRelease{Chart: tc.chart, Namespace: "kube-system", Values: vals})
		if err == nil {
			t.Errorf("chart %s with %s=%v: rendered, want an error", tc.chart, tc.key, tc.value)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("chart %s with %s=%v: error %q does not say %q", tc.chart, tc.key, tc.value, err, tc.want)
		}
	}
}

// A new ConfigMap value rolls the agents: the pod template's hash changes.
func TestChartConfigHashRolls(t *testing.T) {
	hash := func(mode string) string {
		objs, err := manifests.Render(manifests.Options{Sets: []manifests.Set{manifests.Cnilab}, RoutingMode: mode})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range objs {
			if u.GetKind() == "DaemonSet" {
				h, _, _ := unstructured.NestedString(u.Object, "spec", "template", "metadata", "annotations", "cnilab.io/config-hash")
				return h
			}
		}
		t.Fatal("no DaemonSet")
		return ""
	}
	native, vxlan := hash("native"), hash("vxlan")
	if native == "" || native == vxlan {
		t.Errorf("config hash native %q, vxlan %q: want two different non-empty hashes", native, vxlan)
	}
}

func TestWriteChart(t *testing.T) {
	dir := t.TempDir()
	if err := manifests.WriteChart(manifests.CnilabChart, dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"Chart.yaml", "values.yaml", "values.schema.json", "templates/_helpers.tpl", "templates/daemonset.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, manifests.CnilabChart, f)); err != nil {
			t.Errorf("written chart lacks %s: %v", f, err)
		}
	}
	if err := manifests.WriteChart(manifests.CnilabChart, dir); err == nil {
		t.Error("WriteChart over an existing chart: no error")
	}
	if err := manifests.WriteChart("calico", dir); err == nil {
		t.Error("WriteChart(calico): no error")
	}
}

// The agent stays off a node labelled NoScheduleLabel=true, and only there.
func TestChartNoScheduleAffinity(t *testing.T) {
	objs, err := manifests.Render(manifests.Options{Sets: []manifests.Set{manifests.Cnilab}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if u.GetKind() != "DaemonSet" {
			continue
		}
		terms, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "affinity", "nodeAffinity",
			"requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
		want := []any{map[string]any{"matchExpressions": []any{map[string]any{
			"key": manifests.NoScheduleLabel, "operator": "NotIn", "values": []any{"true"}}}}}
		if !reflect.DeepEqual(terms, want) {
			t.Errorf("DaemonSet node affinity terms %v, want %v", terms, want)
		}
		sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "template", "spec", "nodeSelector")
		if !reflect.DeepEqual(sel, map[string]string{"kubernetes.io/os": "linux"}) {
			t.Errorf("DaemonSet nodeSelector %v", sel)
		}
		return
	}
	t.Fatal("no DaemonSet")
}
