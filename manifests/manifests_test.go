package manifests_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/cnilab/cnilab/manifests"
)

func render(t *testing.T, o manifests.Options) []*unstructured.Unstructured {
	t.Helper()
	objs, err := manifests.Render(o)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return objs
}

// typed converts every object to its client-go type and fails on a field the
// type does not have (a typo in a manifest).
func typed(t *testing.T, objs []*unstructured.Unstructured) map[string]runtime.Object {
	t.Helper()
	out := map[string]runtime.Object{}
	for _, u := range objs {
		obj, err := scheme.Scheme.New(u.GroupVersionKind())
		if err != nil {
			t.Fatalf("%s: %v", manifests.Ref(u), err)
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, obj, true); err != nil {
			t.Fatalf("%s: %v", manifests.Ref(u), err)
		}
		ref := manifests.Ref(u)
		if _, dup := out[ref]; dup {
			t.Fatalf("%s rendered twice", ref)
		}
		out[ref] = obj
	}
	return out
}

func get[T runtime.Object](t *testing.T, objs map[string]runtime.Object, ref string) T {
	t.Helper()
	o, ok := objs[ref]
	if !ok {
		t.Fatalf("%s not rendered", ref)
	}
	v, ok := o.(T)
	if !ok {
		t.Fatalf("%s is a %T", ref, o)
	}
	return v
}

func TestRenderDefaults(t *testing.T) {
	objs := render(t, manifests.Options{})
	var refs []string
	for _, u := range objs {
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			t.Errorf("object without apiVersion, kind or name: %v", u.Object)
		}
		switch u.GetKind() {
		case "Namespace", "ClusterRole", "ClusterRoleBinding":
			if u.GetNamespace() != "" {
				t.Errorf("%s: cluster-scoped with namespace %q", manifests.Ref(u), u.GetNamespace())
			}
		default:
			if u.GetNamespace() == "" {
				t.Errorf("%s %s: no namespace", u.GetKind(), u.GetName())
			}
		}
		refs = append(refs, manifests.Ref(u))
	}
	want := []string{
		"ServiceAccount kube-system/cnilab-agent", "ClusterRole cnilab-agent", "ClusterRoleBinding cnilab-agent",
		"ConfigMap kube-system/cnilab-config", "DaemonSet kube-system/cnilab-agent",
		"Namespace kube-flannel", "ServiceAccount kube-flannel/flannel", "ClusterRole flannel", "ClusterRoleBinding flannel",
		"ConfigMap kube-flannel/kube-flannel-cfg", "DaemonSet kube-flannel/kube-flannel-ds",
		"Namespace x", "Namespace y", "Namespace z",
		"Pod x/a", "Pod x/b", "Pod x/c", "Pod y/a", "Pod y/b", "Pod y/c", "Pod z/a", "Pod z/b", "Pod z/c",
	}
	if !slices.Equal(refs, want) {
		t.Errorf("rendered\n  %v\nwant\n  %v", refs, want)
	}
	// Namespaces come before what lives in them.
	seen := map[string]bool{"kube-system": true}
	for _, u := range objs {
		if u.GetKind() == "Namespace" {
			seen[u.GetName()] = true
		} else if ns := u.GetNamespace(); ns != "" && !seen[ns] {
			t.Errorf("%s rendered before its namespace", manifests.Ref(u))
		}
	}
	typed(t, objs)

	cm := get[*corev1.ConfigMap](t, typed(t, objs), "ConfigMap kube-system/cnilab-config")
	if cm.Data["routing-mode"] != "native" || cm.Data["cluster-cidr"] != "10.244.0.0/16" || cm.Data["underlay-device"] != "eth0" || cm.Data["service-cidr"] != "10.96.0.0/12" {
		t.Errorf("default ConfigMap data %v", cm.Data)
	}
}

func TestRenderSubstitutes(t *testing.T) {
	o := manifests.Options{
		Namespace: "cnilab-system", RoutingMode: "vxlan", ClusterCIDR: "10.32.0.0/12", UnderlayDevice: "ens5", ServiceCIDR: "172.20.0.0/16",
		Image: "registry.example/cnilab:v1", ProbeImage: "registry.example/probe:v1",
		FlannelImage: "registry.example/flannel:v9", FlannelCNIPluginImage: "registry.example/flannel-cni:v9",
		ImagePullPolicy: "Always", APIServer: "172.18.0.2:6443",
	}
	objs := typed(t, render(t, o))

	cm := get[*corev1.ConfigMap](t, objs, "ConfigMap cnilab-system/cnilab-config")
	if cm.Data["routing-mode"] != "vxlan" || cm.Data["cluster-cidr"] != "10.32.0.0/12" || cm.Data["underlay-device"] != "ens5" || cm.Data["service-cidr"] != "172.20.0.0/16" {
		t.Errorf("ConfigMap data %v", cm.Data)
	}
	ds := get[*appsv1.DaemonSet](t, objs, "DaemonSet cnilab-system/cnilab-agent")
	crb := get[*rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding cnilab-agent")
	if s := crb.Subjects; len(s) != 1 || s[0].Namespace != "cnilab-system" || s[0].Name != ds.Spec.Template.Spec.ServiceAccountName {
		t.Errorf("binding subjects %+v, want the DaemonSet's service account in cnilab-system", s)
	}
	for _, c := range allContainers(ds.Spec.Template.Spec) {
		if c.Image != o.Image || c.ImagePullPolicy != corev1.PullAlways {
			t.Errorf("container %s: image %s %s", c.Name, c.Image, c.ImagePullPolicy)
		}
	}
	env := map[string]string{}
	for _, e := range ds.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["KUBERNETES_SERVICE_HOST"] != "172.18.0.2" || env["KUBERNETES_SERVICE_PORT"] != "6443" {
		t.Errorf("API server environment %v", env)
	}
	def := get[*appsv1.DaemonSet](t, typed(t, render(t, manifests.Options{})), "DaemonSet kube-system/cnilab-agent")
	if a, b := def.Spec.Template.Annotations["cnilab.io/config-hash"], ds.Spec.Template.Annotations["cnilab.io/config-hash"]; a == "" || a == b {
		t.Errorf("config hash %q does not change with the configuration (%q)", b, a)
	}
	for _, e := range def.Spec.Template.Spec.Containers[0].Env {
		if strings.HasPrefix(e.Name, "KUBERNETES_SERVICE_") {
			t.Errorf("default DaemonSet sets %s: the in-cluster Service should be used", e.Name)
		}
	}

	fcm := get[*corev1.ConfigMap](t, objs, "ConfigMap kube-flannel/kube-flannel-cfg")
	var netConf struct {
		Network string
		Backend struct{ Type string }
	}
	if err := json.Unmarshal([]byte(fcm.Data["net-conf.json"]), &netConf); err != nil {
		t.Fatalf("net-conf.json: %v", err)
	}
	if netConf.Network != "10.32.0.0/12" || netConf.Backend.Type != "vxlan" {
		t.Errorf("net-conf.json %+v", netConf)
	}
	var cniConf map[string]any
	if err := json.Unmarshal([]byte(fcm.Data["cni-conf.json"]), &cniConf); err != nil {
		t.Errorf("cni-conf.json: %v", err)
	}
	fds := get[*appsv1.DaemonSet](t, objs, "DaemonSet kube-flannel/kube-flannel-ds")
	images := map[string]string{}
	for _, c := range allContainers(fds.Spec.Template.Spec) {
		images[c.Name] = c.Image
	}
	if images["install-cni-plugin"] != o.FlannelCNIPluginImage || images["install-cni"] != o.FlannelImage || images["kube-flannel"] != o.FlannelImage {
		t.Errorf("flannel images %v", images)
	}
	for _, ref := range []string{"Pod x/a", "Pod z/c"} {
		if p := get[*corev1.Pod](t, objs, ref); p.Spec.Containers[0].Image != o.ProbeImage {
			t.Errorf("%s image %s", ref, p.Spec.Containers[0].Image)
		}
	}
}

func allContainers(s corev1.PodSpec) []corev1.Container {
	return append(slices.Clone(s.InitContainers), s.Containers...)
}

// agentFlags reads the flag names cmd/cnilab-agent defines (fs.XxxVar(&v,
// "name", ...)).
func agentFlags(t *testing.T) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "cmd", "cnilab-agent", "main.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) < 2 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || !strings.HasSuffix(sel.Sel.Name, "Var") {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "fs" {
			return true
		}
		if lit, ok := call.Args[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			name, _ := strconv.Unquote(lit.Value)
			flags[name] = true
		}
		return true
	})
	if len(flags) < 5 {
		t.Fatalf("found only %d flags in cmd/cnilab-agent/main.go: the parser needs updating", len(flags))
	}
	return flags
}

func TestAgentDaemonSet(t *testing.T) {
	objs := typed(t, render(t, manifests.Options{}))
	ds := get[*appsv1.DaemonSet](t, objs, "DaemonSet kube-system/cnilab-agent")
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork {
		t.Error("not hostNetwork")
	}
	if sa := spec.ServiceAccountName; sa != "cnilab-agent" {
		t.Errorf("service account %q", sa)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Operator == corev1.TolerationOpExists && tl.Key == "" && tl.Effect == ""
	}) {
		t.Errorf("tolerations %+v do not tolerate every taint", spec.Tolerations)
	}
	for _, c := range allContainers(spec) {
		sc := c.SecurityContext
		if sc == nil || sc.Privileged == nil || *sc.Privileged {
			t.Errorf("container %s: privileged not set to false", c.Name)
		}
		if sc != nil && sc.AllowPrivilegeEscalation != nil && *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s allows privilege escalation", c.Name)
		}
		if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("container %s does not drop ALL capabilities", c.Name)
		}
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want the agent only", len(spec.Containers))
	}
	agent := spec.Containers[0]
	caps := agent.SecurityContext.Capabilities.Add
	if want := []corev1.Capability{"BPF", "NET_ADMIN", "PERFMON", "SYS_RESOURCE"}; !slices.Equal(caps, want) {
		t.Errorf("agent capabilities %v, want exactly %v", caps, want)
	}
	noMemlock := typed(t, render(t, manifests.Options{NoMemlockCapability: true}))
	caps = get[*appsv1.DaemonSet](t, noMemlock, "DaemonSet kube-system/cnilab-agent").Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add
	if want := []corev1.Capability{"BPF", "NET_ADMIN", "PERFMON"}; !slices.Equal(caps, want) {
		t.Errorf("agent capabilities without the memlock one: %v, want %v", caps, want)
	}
	if c := spec.InitContainers; len(c) != 1 || len(c[0].SecurityContext.Capabilities.Add) != 0 {
		t.Errorf("init containers %+v: want one, adding no capability", c)
	}

	// Every flag is one cmd/cnilab-agent has; no kubeconfig (in-cluster).
	known := agentFlags(t)
	args := map[string]string{}
	for _, a := range agent.Args {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !ok {
			t.Errorf("agent argument %q: want --flag=value", a)
			continue
		}
		if !known[name] {
			t.Errorf("agent argument %q: cmd/cnilab-agent has no flag %q", a, name)
		}
		args[name] = value
	}
	for _, f := range []string{"node-name", "routing-mode", "underlay-device", "state-dir", "bpffs", "socket", "cni-conf-dir", "ipam-data-dir", "metrics-address"} {
		if _, ok := args[f]; !ok {
			t.Errorf("agent flag --%s not set", f)
		}
	}
	if _, ok := args["kubeconfig"]; ok {
		t.Error("agent gets --kubeconfig: the DaemonSet uses its service account")
	}
	// $(VAR) references resolve to the container's environment, and the
	// ConfigMap keys it reads exist.
	cm := get[*corev1.ConfigMap](t, objs, "ConfigMap kube-system/cnilab-config")
	envs := map[string]bool{}
	for _, e := range agent.Env {
		envs[e.Name] = true
		if r := e.ValueFrom; r != nil && r.ConfigMapKeyRef != nil {
			if r.ConfigMapKeyRef.Name != cm.Name {
				t.Errorf("env %s reads ConfigMap %s", e.Name, r.ConfigMapKeyRef.Name)
			} else if _, ok := cm.Data[r.ConfigMapKeyRef.Key]; !ok {
				t.Errorf("env %s reads key %q the ConfigMap lacks", e.Name, r.ConfigMapKeyRef.Key)
			}
		}
	}
	for _, a := range agent.Args {
		if i := strings.Index(a, "$("); i >= 0 {
			v := a[i+2 : i+strings.Index(a[i:], ")")]
			if !envs[v] {
				t.Errorf("argument %q refers to $(%s), which the container does not define", a, v)
			}
		}
	}

	// Host paths: the four the issue names, each a hostPath, and the agent's
	// paths mounted at the host's own path (the CNI plugin on the host uses
	// the socket and IPAM paths the agent writes into the conflist).
	hostPaths := map[string]string{} // volume -> host path
	for _, v := range spec.Volumes {
		if v.HostPath == nil {
			t.Errorf("volume %s is not a hostPath", v.Name)
			continue
		}
		hostPaths[v.Name] = v.HostPath.Path
	}
	for _, p := range []string{"/sys/fs/bpf", "/opt/cni/bin", "/etc/cni/net.d", "/run/cnilab"} {
		if !slices.Contains(slices.Collect(maps.Values(hostPaths)), p) {
			t.Errorf("no hostPath volume for %s", p)
		}
	}
	mounts := map[string]corev1.VolumeMount{} // mount path -> mount
	for _, m := range agent.VolumeMounts {
		mounts[m.MountPath] = m
		if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional {
			t.Errorf("mount %s is Bidirectional, which needs a privileged container", m.MountPath)
		}
	}
	if m, ok := mounts["/sys/fs/bpf"]; !ok || m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationHostToContainer {
		t.Errorf("bpffs mount %+v: want /sys/fs/bpf with HostToContainer propagation", m)
	}
	for _, f := range []string{"state-dir", "ipam-data-dir", "bpffs", "socket", "cni-conf-dir"} {
		p := args[f]
		var found bool
		for mp, m := range mounts {
			if p == mp || strings.HasPrefix(p, mp+"/") {
				found = true
				if hostPaths[m.Name] != mp {
					t.Errorf("--%s=%s: mounted from host path %s at %s, want the same path", f, p, hostPaths[m.Name], mp)
				}
			}
		}
		if !found {
			t.Errorf("--%s=%s is on no host mount", f, p)
		}
	}
	initMounts := spec.InitContainers[0].VolumeMounts
	initCmd := spec.InitContainers[0].Command
	if len(initMounts) != 1 || hostPaths[initMounts[0].Name] != "/opt/cni/bin" || len(initCmd) == 0 || initCmd[len(initCmd)-1] != initMounts[0].MountPath {
		t.Errorf("install-cni: command %v, mounts %+v: want the host's /opt/cni/bin as its argument", spec.InitContainers[0].Command, initMounts)
	}

	// Probes reach the agent's TCP listener on the node's loopback:
	// readiness is the agent's /healthz (503 until reconciled); liveness and
	// startup only ask that the process answers (/metrics), so an agent
	// waiting for its node's PodCIDR is not restarted for it.
	host, port, _ := net.SplitHostPort(manifests.MetricsAddress)
	if args["metrics-address"] != manifests.MetricsAddress {
		t.Errorf("--metrics-address=%s, want %s", args["metrics-address"], manifests.MetricsAddress)
	}
	for name, pp := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{"startup": {agent.StartupProbe, "/metrics"}, "liveness": {agent.LivenessProbe, "/metrics"}, "readiness": {agent.ReadinessProbe, "/healthz"}} {
		p := pp.probe
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe %+v: want an HTTP probe", name, p)
			continue
		}
		if p.HTTPGet.Host != host || p.HTTPGet.Port.String() != port {
			t.Errorf("%s probe on %s:%s, want %s", name, p.HTTPGet.Host, p.HTTPGet.Port.String(), manifests.MetricsAddress)
		}
		if p.HTTPGet.Path != pp.path {
			t.Errorf("%s probe path %s, want %s", name, p.HTTPGet.Path, pp.path)
		}
	}
}

func TestAgentRBAC(t *testing.T) {
	objs := typed(t, render(t, manifests.Options{}))
	cr := get[*rbacv1.ClusterRole](t, objs, "ClusterRole cnilab-agent")
	// What datapath/agent's informers and Get read, and its one write: the
	// status annotation on its Node, a patch of nodes/status.
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes", "pods", "namespaces"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
	}
	if got, _ := json.Marshal(cr.Rules); string(got) != string(must(json.Marshal(want))) {
		t.Errorf("cnilab-agent rules %s, want %s", got, must(json.Marshal(want)))
	}
	crb := get[*rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding cnilab-agent")
	if crb.RoleRef.Name != cr.Name || crb.RoleRef.Kind != "ClusterRole" {
		t.Errorf("binding refers to %+v", crb.RoleRef)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestFlannel(t *testing.T) {
	objs := typed(t, render(t, manifests.Options{Sets: []manifests.Set{manifests.Flannel}}))
	cr := get[*rbacv1.ClusterRole](t, objs, "ClusterRole flannel")
	// The rules of lab/internal/cni flannelRBAC (upstream's ClusterRole).
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
	}
	if got, _ := json.Marshal(cr.Rules); string(got) != string(must(json.Marshal(want))) {
		t.Errorf("flannel rules %s, want %s", got, must(json.Marshal(want)))
	}
	ds := get[*appsv1.DaemonSet](t, objs, "DaemonSet kube-flannel/kube-flannel-ds")
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork || spec.ServiceAccountName != "flannel" {
		t.Errorf("hostNetwork %v, service account %q", spec.HostNetwork, spec.ServiceAccountName)
	}
	for _, c := range allContainers(spec) {
		if sc := c.SecurityContext; sc != nil && sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container %s is privileged", c.Name)
		}
		ref := c.Image
		tag := ref[strings.LastIndex(ref, ":")+1:]
		if !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") || tag == "latest" {
			t.Errorf("container %s image %s is not pinned by tag", c.Name, ref)
		}
	}
	flanneld := spec.Containers[0]
	for _, a := range []string{"--ip-masq", "--kube-subnet-mgr"} {
		if !slices.Contains(flanneld.Args, a) {
			t.Errorf("flanneld args %v lack %s", flanneld.Args, a)
		}
	}
	if !strings.HasSuffix(manifests.DefaultFlannelImage, ":v0.28.10") {
		t.Errorf("default flannel image %s is not the release tools/flannel builds (v0.28.10)", manifests.DefaultFlannelImage)
	}
	for _, u := range render(t, manifests.Options{Sets: []manifests.Set{manifests.Flannel}}) {
		if !strings.Contains(u.GetNamespace()+u.GetName(), "flannel") {
			t.Errorf("%s rendered in the flannel set", manifests.Ref(u))
		}
	}
}

func TestWorkload(t *testing.T) {
	for _, sctp := range []bool{false, true} {
		objs := typed(t, render(t, manifests.Options{Sets: []manifests.Set{manifests.Workload}, WorkloadSCTP: sctp}))
		if len(objs) != 12 {
			t.Errorf("sctp=%v: %d objects, want 3 namespaces and 9 pods", sctp, len(objs))
		}
		protos := []string{"tcp", "udp"}
		if sctp {
			protos = append(protos, "sctp")
		}
		for _, ns := range []string{"x", "y", "z"} {
			n := get[*corev1.Namespace](t, objs, "Namespace "+ns)
			if n.Labels["ns"] != ns {
				t.Errorf("namespace %s labels %v", ns, n.Labels)
			}
			for _, name := range []string{"a", "b", "c"} {
				p := get[*corev1.Pod](t, objs, "Pod "+ns+"/"+name)
				if p.Labels["pod"] != name {
					t.Errorf("pod %s/%s labels %v", ns, name, p.Labels)
				}
				c := p.Spec.Containers[0]
				var names []string
				for _, port := range c.Ports {
					names = append(names, port.Name)
					if want := "serve-" + strconv.Itoa(int(port.ContainerPort)) + "-" + strings.ToLower(string(port.Protocol)); port.Name != want {
						t.Errorf("pod %s/%s port %+v: want the name %s", ns, name, port, want)
					}
				}
				var want []string
				for _, port := range []string{"80", "81"} {
					for _, proto := range protos {
						want = append(want, "serve-"+port+"-"+proto)
					}
				}
				if !slices.Equal(names, want) {
					t.Errorf("pod %s/%s ports %v, want %v", ns, name, names, want)
				}
				wantArgs := []string{"serve", "--name=" + name}
				for _, proto := range protos {
					wantArgs = append(wantArgs, "--"+proto+"=80,81")
				}
				if !slices.Equal(c.Args, wantArgs) {
					t.Errorf("pod %s/%s args %v, want %v", ns, name, c.Args, wantArgs)
				}
				if c.Image != manifests.DefaultProbeImage {
					t.Errorf("pod %s/%s image %s", ns, name, c.Image)
				}
			}
		}
	}
}

func TestRenderRejects(t *testing.T) {
	for name, o := range map[string]manifests.Options{
		"routing mode":           {RoutingMode: "geneve"},
		"CIDR":                   {ClusterCIDR: "10.244.0.0"},
		"CIDR host bits":         {ClusterCIDR: "10.244.1.0/16"},
		"IPv6 CIDR":              {ClusterCIDR: "fd00::/64"},
		"service CIDR":           {ServiceCIDR: "10.96.0.0"},
		"service CIDR host bits": {ServiceCIDR: "10.96.0.1/12"},
		"namespace":              {Namespace: "Kube_System"},
		"device":                 {UnderlayDevice: "eth0 eth1"},
		"image":                  {Image: "cnilab/cnilab:dev\"\ninjected: true"},
		"pull policy":            {ImagePullPolicy: "Sometimes"},
		"API server":             {APIServer: "10.0.0.1"},
		"API port":               {APIServer: "10.0.0.1:99999"},
		"set":                    {Sets: []manifests.Set{"calico"}},
	} {
		if _, err := manifests.Render(o); err == nil {
			t.Errorf("%s: %+v rendered", name, o)
		}
	}
}

func TestRenderSets(t *testing.T) {
	objs := render(t, manifests.Options{Sets: []manifests.Set{manifests.Workload, manifests.Cnilab}})
	// Render order is the sets' own order, not the option's.
	if first, last := manifests.Ref(objs[0]), manifests.Ref(objs[len(objs)-1]); first != "ServiceAccount kube-system/cnilab-agent" || last != "Pod z/c" {
		t.Errorf("first %s, last %s", first, last)
	}
	for _, u := range objs {
		if strings.Contains(u.GetName()+u.GetNamespace(), "flannel") {
			t.Errorf("%s rendered without the flannel set", manifests.Ref(u))
		}
	}
}

func TestKubeProxySet(t *testing.T) {
	if _, err := manifests.Render(manifests.Options{Sets: []manifests.Set{manifests.KubeProxy}}); err == nil || !strings.Contains(err.Error(), "needs the API server's address") {
		t.Errorf("kube-proxy without an API server address: %v", err)
	}
	objs := typed(t, render(t, manifests.Options{Sets: []manifests.Set{manifests.KubeProxy}, APIServer: "172.30.0.2:6443", ClusterCIDR: "10.244.0.0/16"}))
	ds := get[*appsv1.DaemonSet](t, objs, "DaemonSet kube-system/kube-proxy")
	c := ds.Spec.Template.Spec.Containers[0]
	if c.Image != manifests.DefaultKubeProxyImage || !ds.Spec.Template.Spec.HostNetwork || c.SecurityContext == nil || !*c.SecurityContext.Privileged {
		t.Errorf("kube-proxy container %+v", c)
	}
	cm := get[*corev1.ConfigMap](t, objs, "ConfigMap kube-system/kube-proxy")
	if !strings.Contains(cm.Data["kubeconfig.conf"], `server: "https://172.30.0.2:6443"`) || !strings.Contains(cm.Data["config.conf"], "mode: iptables") ||
		!strings.Contains(cm.Data["config.conf"], `clusterCIDR: "10.244.0.0/16"`) {
		t.Errorf("kube-proxy ConfigMap %v", cm.Data)
	}
	crb := get[*rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding cnilab:node-proxier")
	if crb.RoleRef.Name != "system:node-proxier" || crb.Subjects[0].Name != "kube-proxy" {
		t.Errorf("kube-proxy binding %+v", crb)
	}
	if def := render(t, manifests.Options{}); slices.ContainsFunc(def, func(u *unstructured.Unstructured) bool { return u.GetName() == "kube-proxy" }) {
		t.Error("the default sets include kube-proxy")
	}
}

func TestCoreDNSSet(t *testing.T) {
	objs := typed(t, render(t, manifests.Options{Sets: []manifests.Set{manifests.CoreDNS}, ServiceCIDR: "10.96.0.0/16"}))
	svc := get[*corev1.Service](t, objs, "Service kube-system/kube-dns")
	if svc.Spec.ClusterIP != "10.96.0.10" || svc.Labels["k8s-app"] != "kube-dns" {
		t.Errorf("kube-dns Service: clusterIP %s labels %v", svc.Spec.ClusterIP, svc.Labels)
	}
	d := get[*appsv1.Deployment](t, objs, "Deployment kube-system/coredns")
	if c := d.Spec.Template.Spec.Containers[0]; c.Image != manifests.DefaultCoreDNSImage || len(c.Env) != 0 {
		t.Errorf("coredns container %+v", c)
	}
	cm := get[*corev1.ConfigMap](t, objs, "ConfigMap kube-system/coredns")
	if cf := cm.Data["Corefile"]; !strings.Contains(cf, "kubernetes cluster.local in-addr.arpa") || strings.Contains(cf, "forward") {
		t.Errorf("Corefile answers for other than the cluster or forwards:\n%s", cf)
	}
	direct := typed(t, render(t, manifests.Options{Sets: []manifests.Set{manifests.CoreDNS}, APIServer: "172.30.0.2:6443"}))
	if env := get[*appsv1.Deployment](t, direct, "Deployment kube-system/coredns").Spec.Template.Spec.Containers[0].Env; len(env) != 2 || env[0].Value != "172.30.0.2" {
		t.Errorf("CoreDNS without the kubernetes Service: env %v", env)
	}
	if _, err := manifests.Render(manifests.Options{Sets: []manifests.Set{manifests.CoreDNS}, ServiceCIDR: "10.96.0.0/16", ClusterDNS: "10.0.0.10"}); err == nil {
		t.Error("a cluster DNS address outside the service CIDR was accepted")
	}
	if got := manifests.DefaultClusterDNS("10.100.0.0/16"); got != "10.100.0.10" {
		t.Errorf("DefaultClusterDNS = %s", got)
	}
}
