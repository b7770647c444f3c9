package cni

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseSubnetEnv(t *testing.T) {
	e, err := ParseSubnetEnv("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
	if err != nil {
		t.Fatal(err)
	}
	if e != (SubnetEnv{Network: "10.244.0.0/16", Subnet: "10.244.1.1/24", MTU: 1450, IPMasq: true}) {
		t.Fatalf("parsed %+v", e)
	}
	for _, bad := range []string{"", "FLANNEL_NETWORK=10.244.0.0/16\n", "FLANNEL_NETWORK=a\nFLANNEL_SUBNET=b\nFLANNEL_MTU=x\n"} {
		if _, err := ParseSubnetEnv(bad); err == nil {
			t.Errorf("ParseSubnetEnv(%q) accepted a bad file", bad)
		}
	}
}

func TestFlannelConflistIsTheDelegatedBridge(t *testing.T) {
	b, err := FlannelConflist(SubnetEnv{Network: "10.244.0.0/16", Subnet: "10.244.3.1/24", MTU: 1450, IPMasq: true}, "/lab/n1/var/lib/cni/networks")
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		CNIVersion string           `json:"cniVersion"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	br := conf.Plugins[0]
	if br["type"] != "bridge" || br["bridge"] != "cni0" || br["isDefaultGateway"] != true || br["ipMasq"] != false || br["mtu"] != 1450.0 {
		t.Errorf("bridge plugin config %v", br)
	}
	s := string(b)
	for _, want := range []string{`"subnet": "10.244.3.0/24"`, `"dst": "10.244.0.0/16"`, `"/lab/n1/var/lib/cni/networks"`, `"portmap"`} {
		if !strings.Contains(s, want) {
			t.Errorf("conflist lacks %s:\n%s", want, s)
		}
	}
}

func TestSubnetOf(t *testing.T) {
	for in, want := range map[string]string{"10.244.1.1/24": "10.244.1.0/24", "10.244.0.129/25": "10.244.0.128/25", "bad": "bad"} {
		if got := subnetOf(in); got != want {
			t.Errorf("subnetOf(%q) = %q, want %q", in, got, want)
		}
	}
}
