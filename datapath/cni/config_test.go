package cni

import (
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// cniCode returns the CNI error code of err (0 when err is nil or not CNI's).
func cniCode(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestParseConfig(t *testing.T) {
	for _, c := range []struct {
		name, json string
		code       uint
		want       string // in the message
	}{
		{"minimal", `{"cniVersion":"1.1.0","name":"cnilab","type":"cnilab-cni"}`, 0, ""},
		{"full", `{"cniVersion":"1.1.0","name":"cnilab","type":"cnilab-cni","agentSocket":"/run/x.sock","ipamDataDir":"/var/lib/x","mtu":1400}`, 0, ""},
		{"runtime-injected", `{"cniVersion":"1.1.0","cniVersions":["1.1.0"],"name":"n","type":"t","args":{},"runtimeConfig":{},
			"capabilities":{},"prevResult":{},"dns":{},"disableCheck":false,"disableGC":false,"loadOnlyInlinedPlugins":false,
			"cni.dev/valid-attachments":[],"cni.dev/attachments":[]}`, 0, ""},
		{"malformed", `{"name":`, types.ErrDecodingFailure, "decode"},
		{"not an object", `[1]`, types.ErrDecodingFailure, "decode"},
		{"wrong type", `{"name":"n","mtu":"big"}`, types.ErrDecodingFailure, "mtu"},
		{"unknown field", `{"name":"n","type":"t","bridge":"cni0"}`, types.ErrUnsupportedField, `"bridge"`},
		{"delegated ipam", `{"name":"n","type":"t","ipam":{"type":"host-local"}}`, types.ErrUnsupportedField, `"ipam"`},
		{"no name", `{"type":"t"}`, types.ErrInvalidNetworkConfig, "name"},
		{"relative socket", `{"name":"n","agentSocket":"agent.sock"}`, types.ErrInvalidNetworkConfig, "agentSocket"},
		{"relative ipam dir", `{"name":"n","ipamDataDir":"ipam"}`, types.ErrInvalidNetworkConfig, "ipamDataDir"},
		{"mtu too small", `{"name":"n","mtu":20}`, types.ErrInvalidNetworkConfig, "mtu"},
		{"mtu negative", `{"name":"n","mtu":-1}`, types.ErrInvalidNetworkConfig, "mtu"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf, err := ParseConfig([]byte(c.json))
			if got := cniCode(err); got != c.code || (err == nil) != (c.code == 0) {
				t.Fatalf("code = %d (%v), want %d", got, err, c.code)
			}
			if err != nil && !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
			if err == nil && (conf.AgentSocket == "" || conf.IPAMDataDir == "") {
				t.Fatalf("defaults not applied: %+v", conf)
			}
		})
	}
	conf, _ := ParseConfig([]byte(`{"name":"n","mtu":1400,"agentSocket":"/a//b.sock"}`))
	if conf.MTU != 1400 || conf.AgentSocket != "/a/b.sock" || conf.IPAMDataDir != DefaultIPAMDataDir {
		t.Fatalf("parsed %+v", conf)
	}
}

func TestValidateArgs(t *testing.T) {
	ok := func(a skel.CmdArgs) *skel.CmdArgs {
		if a.ContainerID == "" {
			a.ContainerID = "c1"
		}
		return &a
	}
	for _, c := range []struct {
		name      string
		args      *skel.CmdArgs
		needNetns bool
		code      uint
		want      string
	}{
		{"good", ok(skel.CmdArgs{IfName: "eth0", Netns: "/run/netns/pod"}), true, 0, ""},
		{"var run", ok(skel.CmdArgs{IfName: "eth0", Netns: "/var/run/netns/cni-1234"}), true, 0, ""},
		{"proc", ok(skel.CmdArgs{IfName: "eth0", Netns: "/proc/4242/ns/net"}), true, 0, ""},
		{"15 bytes", ok(skel.CmdArgs{IfName: "abcdefghijklmno", Netns: "/run/netns/p"}), true, 0, ""},
		{"16 bytes", ok(skel.CmdArgs{IfName: "abcdefghijklmnop", Netns: "/run/netns/p"}), true, types.ErrInvalidEnvironmentVariables, "CNI_IFNAME"},
		{"slash", ok(skel.CmdArgs{IfName: "eth/0", Netns: "/run/netns/p"}), true, types.ErrInvalidEnvironmentVariables, "CNI_IFNAME"},
		{"colon", ok(skel.CmdArgs{IfName: "eth0:1", Netns: "/run/netns/p"}), true, types.ErrInvalidEnvironmentVariables, "CNI_IFNAME"},
		{"space", ok(skel.CmdArgs{IfName: "eth 0", Netns: "/run/netns/p"}), true, types.ErrInvalidEnvironmentVariables, "CNI_IFNAME"},
		{"empty ifname", ok(skel.CmdArgs{Netns: "/run/netns/p"}), true, types.ErrInvalidEnvironmentVariables, "CNI_IFNAME"},
		{"no netns on ADD", ok(skel.CmdArgs{IfName: "eth0"}), true, types.ErrInvalidEnvironmentVariables, "CNI_NETNS"},
		{"no netns on DEL", ok(skel.CmdArgs{IfName: "eth0"}), false, 0, ""},
		{"netns in /tmp", ok(skel.CmdArgs{IfName: "eth0", Netns: "/tmp/pod"}), true, types.ErrInvalidEnvironmentVariables, "CNI_NETNS"},
		{"netns escapes", ok(skel.CmdArgs{IfName: "eth0", Netns: "/run/netns/../../etc/passwd"}), true, types.ErrInvalidEnvironmentVariables, "CNI_NETNS"},
		{"netns regular file", ok(skel.CmdArgs{IfName: "eth0", Netns: "/etc/hostname"}), true, types.ErrInvalidEnvironmentVariables, "CNI_NETNS"},
		{"netns relative", ok(skel.CmdArgs{IfName: "eth0", Netns: "run/netns/p"}), true, types.ErrInvalidEnvironmentVariables, "CNI_NETNS"},
		{"proc self", ok(skel.CmdArgs{IfName: "eth0", Netns: "/proc/self/ns/net"}), true, 0, ""}, // nsfs, by statfs
		{"bad netns on DEL", ok(skel.CmdArgs{IfName: "eth0", Netns: "/tmp/pod"}), false, types.ErrInvalidEnvironmentVariables, "CNI_NETNS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := validateArgs(c.args, c.needNetns)
			if got := cniCode(err); got != c.code || (err == nil) != (c.code == 0) {
				t.Fatalf("code = %d (%v), want %d", got, err, c.code)
			}
			if err != nil && !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name %s", err, c.want)
			}
		})
	}
}

func TestParseCNIArgs(t *testing.T) {
	pa, err := parseCNIArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1;OTHER=x")
	if err != nil || pa != (podArgs{Namespace: "ns", Name: "web-0", UID: "u-1", InfraContainerID: "abc"}) {
		t.Fatalf("got %+v, %v", pa, err)
	}
	if _, err := parseCNIArgs("K8S_POD_NAME"); cniCode(err) != types.ErrInvalidEnvironmentVariables {
		t.Fatalf("malformed CNI_ARGS: %v", err)
	}
	if pa, err := parseCNIArgs(""); err != nil || pa != (podArgs{}) {
		t.Fatalf("empty CNI_ARGS: %+v %v", pa, err)
	}
}

func TestNames(t *testing.T) {
	n := HostVethName("c1", "eth0")
	if len(n) != 14 || !strings.HasPrefix(n, "lxc") || n == HostVethName("c1", "eth1") {
		t.Fatalf("HostVethName = %q", n)
	}
	if n != HostVethName("c1", "eth0") {
		t.Fatal("HostVethName is not deterministic")
	}
	id, ifname, ok := parseAlias(hostAlias("cnilab-uid/x", "eth0"))
	if !ok || id != "cnilab-uid/x" || ifname != "eth0" {
		t.Fatalf("parseAlias = %q %q %v", id, ifname, ok)
	}
	for _, a := range []string{"", "other", "cnilab:", "cnilab:/eth0", "cnilab:c1/"} {
		if _, _, ok := parseAlias(a); ok {
			t.Errorf("parseAlias(%q) ok", a)
		}
	}
}
