package realnode

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"sigs.k8s.io/yaml"
)

var node = Node{Name: "node-1", IP: "172.30.0.11", ToolsDir: "/opt/tools", ClusterDNS: "10.96.0.10", CgroupV1: true}

func TestContainerdTOML(t *testing.T) {
	b, err := ContainerdTOML(node)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Version int
		Root    string
		GRPC    struct{ Address string } `toml:"grpc"`
		Plugins map[string]map[string]any
	}
	if _, err := toml.Decode(string(b), &cfg); err != nil {
		t.Fatalf("containerd config does not parse: %v\n%s", err, b)
	}
	if cfg.Version != 3 || cfg.GRPC.Address != ContainerdSocket || cfg.Root != "/var/lib/containerd" {
		t.Errorf("containerd config: %+v", cfg)
	}
	rt := cfg.Plugins["io.containerd.cri.v1.runtime"]
	runc := rt["containerd"].(map[string]any)["runtimes"].(map[string]any)["runc"].(map[string]any)["options"].(map[string]any)
	if runc["BinaryName"] != "/opt/tools/runc" || runc["SystemdCgroup"] != false {
		t.Errorf("runc options: %v", runc)
	}
	if sb := cfg.Plugins["io.containerd.cri.v1.images"]["pinned_images"].(map[string]any)["sandbox"]; sb != PauseImage {
		t.Errorf("sandbox image %v, want %s", sb, PauseImage)
	}
}

func TestKubeletYAML(t *testing.T) {
	b, err := KubeletYAML(node)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("kubelet config does not parse: %v\n%s", err, b)
	}
	for k, want := range map[string]any{"kind": "KubeletConfiguration", "cgroupDriver": "cgroupfs", "failCgroupV1": false,
		"containerRuntimeEndpoint": "unix://" + ContainerdSocket, "resolvConf": "", "failSwapOn": false} {
		if cfg[k] != want {
			t.Errorf("%s = %v, want %v", k, cfg[k], want)
		}
	}
	if dns := cfg["clusterDNS"].([]any); len(dns) != 1 || dns[0] != "10.96.0.10" {
		t.Errorf("clusterDNS = %v", dns)
	}
	v2 := node
	v2.CgroupV1 = false
	b2, _ := KubeletYAML(v2)
	if strings.Contains(string(b2), "failCgroupV1") {
		t.Error("failCgroupV1 set on a cgroup v2 node")
	}
	if _, err := KubeletYAML(Node{Name: "x", IP: "1.2.3.4", ToolsDir: "rel", ClusterDNS: "10.96.0.10"}); err == nil {
		t.Error("a relative tools directory was accepted")
	}
}

func TestSandboxSpec(t *testing.T) {
	s := SandboxSpec(node, "lab1", "/run/cnilab/lab1/nodes/node-1", "/run/cnilab/lab1/logs")
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.Cgroup != "cnilab/lab1/node-1" || len(s.Daemons) != 2 || s.Daemons[1].WaitFor != ContainerdSocket {
		t.Errorf("spec: %+v", s)
	}
	var targets []string
	for _, b := range s.Binds {
		targets = append(targets, b.Target)
	}
	for _, want := range []string{"/var/lib/kubelet", "/var/lib/containerd", "/run", "/etc/cni/net.d", "/opt/cni/bin", "/etc/machine-id"} {
		if !strings.Contains(strings.Join(targets, " "), want) {
			t.Errorf("no bind for %s in %v", want, targets)
		}
	}
}
