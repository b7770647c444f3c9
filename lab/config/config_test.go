package config

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := Default()
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"bad name", func(c *Config) { c.Name = "Bad_Name" }, "invalid lab name"},
		{"long name", func(c *Config) { c.Name = strings.Repeat("a", 21) }, "invalid lab name"},
		{"unknown provider", func(c *Config) { c.Provider = "vbox" }, `unknown provider "vbox"`},
		{"unknown cni", func(c *Config) { c.CNI = "calico" }, `unknown CNI "calico"`},
		{"existing cni elsewhere", func(c *Config) { c.CNI = ExistingCNI }, `CNI "existing" is only for the existing provider`},
		{"existing provider with a cni", func(c *Config) { c.Provider = "existing" }, `use CNI "existing", not "flannel"`},
		{"zero nodes", func(c *Config) { c.Nodes = 0 }, "invalid node count 0"},
		{"too many nodes", func(c *Config) { c.Nodes = 65 }, "invalid node count 65"},
		{"port", func(c *Config) { c.APIPort = 70000 }, "invalid API port"},
		{"underlay v6", func(c *Config) { c.Underlay = "fd00::/64" }, "invalid underlay"},
		{"host bits", func(c *Config) { c.ClusterCIDR = "10.244.1.0/16" }, "host bits set"},
		{"overlap", func(c *Config) { c.ServiceCIDR = "10.244.128.0/20" }, "overlap"},
		{"mask", func(c *Config) { c.NodeMask = 16 }, "node CIDR mask"},
		{"small underlay", func(c *Config) { c.Underlay = "172.30.0.0/29" }, "too small"},
		{"flannel with another datapath build", func(c *Config) { c.DatapathBinDir = "/old/bin" }, "runs only in a cnilab lab of the netns provider"},
		{"qemu with another datapath build", func(c *Config) { c.CNI, c.Provider, c.DatapathBinDir = "cnilab", "qemu", "/old/bin" }, "runs only in a cnilab lab of the netns provider"},
		{"unknown node kind", func(c *Config) { c.NodeKind = "heavy" }, `unknown node kind "heavy"`},
		{"real nodes in qemu", func(c *Config) { c.Provider, c.NodeKind = "qemu", NodeKindReal }, "real nodes run on the netns provider only"},
		{"flannel without kube-proxy", func(c *Config) { c.CNI, c.NoKubeProxy = "flannel", true }, "a flannel lab always runs kube-proxy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
	noProxy := Default()
	noProxy.CNI, noProxy.NoKubeProxy = "cnilab", true
	if err := noProxy.Validate(); err != nil {
		t.Fatalf("a cnilab lab without kube-proxy is valid: %v", err)
	}
	other := Default()
	other.CNI, other.DatapathBinDir = "cnilab-vxlan", "/old/bin"
	if err := other.Validate(); err != nil {
		t.Fatalf("a cnilab-vxlan netns lab with another datapath build is valid: %v", err)
	}
}

func TestValidateProviders(t *testing.T) {
	for _, tc := range []struct{ provider, cni string }{
		{"netns", "cnilab"}, {"qemu", "flannel"}, {"kind", "cnilab-vxlan"}, {"existing", ExistingCNI},
	} {
		c := Default()
		c.Provider, c.CNI = tc.provider, tc.cni
		if tc.provider == "qemu" {
			c.QEMU = &QEMU{Kernel: "6.12"}
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s with %s: %v", tc.provider, tc.cni, err)
		}
	}
}

func TestAddressPlan(t *testing.T) {
	c := Default()
	c.Name = "e2e"
	if got := c.ControlPlaneIP().String(); got != "172.30.0.1" {
		t.Errorf("control plane ip %s", got)
	}
	if got := c.NodeIP(3).String(); got != "172.30.0.13" {
		t.Errorf("node 3 ip %s", got)
	}
	if got := c.NodeNetns(2); got != "cnilab.e2e.node-2" {
		t.Errorf("node netns %s", got)
	}
	if got := c.NodeName(2); got != "e2e-node-2" {
		t.Errorf("node name %s", got)
	}
}

func TestDefaultNodeKind(t *testing.T) {
	for provider, want := range map[string]string{"netns": NodeKindReal, "qemu": NodeKindLight, "kind": NodeKindLight, "existing": NodeKindLight} {
		if got := DefaultNodeKind(provider); got != want {
			t.Errorf("DefaultNodeKind(%s) = %s, want %s", provider, got, want)
		}
		c := Config{Provider: provider, NodeKind: DefaultNodeKind(provider)}
		if c.Real() && provider != "netns" {
			t.Errorf("the default node kind of %s is real, which Validate refuses there", provider)
		}
	}
}
