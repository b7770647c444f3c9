package cni

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// FuzzParseConfig feeds arbitrary network configurations to ParseConfig
// (cnilab-cni's stdin): it must never panic; every error must be a CNI
// error with one of the configuration codes and a message; an accepted
// configuration must have a name, clean absolute paths and an MTU in range.
//
//	go test -run '^$' -fuzz FuzzParseConfig ./datapath/cni/
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{"cniVersion":"1.1.0","name":"cnilab","type":"cnilab-cni"}`,
		`{"cniVersion":"1.1.0","name":"cnilab","type":"cnilab-cni","agentSocket":"/run/cnilab/../cnilab/agent.sock","mtu":1450}`,
		`{"cniVersion":"1.1.0","name":"cnilab","type":"cnilab-cni","ipam":{"type":"host-local"}}`,
		`{"cniVersion":"1.1.0","name":"","type":"cnilab-cni"}`,
		`{"name":"x","agentSocket":"relative.sock"}`,
		`{"name":"x","mtu":67}`,
		`{"name":"x","mtu":1e10}`,
		`{"name":"x","prevResult":{"cniVersion":"1.1.0","interfaces":[{"name":"eth0"}]}}`,
		`{"name":"x","runtimeConfig":{"portMappings":[]},"capabilities":{"portMappings":true}}`,
		`[]`, `null`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stdin []byte) {
		conf, err := ParseConfig(stdin)
		if err != nil {
			var ce *types.Error
			if !errors.As(err, &ce) || ce.Msg == "" {
				t.Fatalf("ParseConfig(%q): error %v (%T) is not a CNI error with a message", stdin, err, err)
			}
			switch ce.Code {
			case types.ErrDecodingFailure, types.ErrUnsupportedField, types.ErrInvalidNetworkConfig:
			default:
				t.Fatalf("ParseConfig(%q): error code %d for a bad configuration", stdin, ce.Code)
			}
			return
		}
		if conf.Name == "" {
			t.Fatalf("ParseConfig(%q): accepted without a name", stdin)
		}
		for _, p := range []string{conf.AgentSocket, conf.IPAMDataDir} {
			if !filepath.IsAbs(p) || filepath.Clean(p) != p {
				t.Fatalf("ParseConfig(%q): path %q is not clean and absolute", stdin, p)
			}
		}
		if conf.MTU != 0 && (conf.MTU < 68 || conf.MTU > 65535) {
			t.Fatalf("ParseConfig(%q): mtu %d", stdin, conf.MTU)
		}
	})
}

// FuzzCNIEnvironment feeds arbitrary CNI_IFNAME, CNI_NETNS and CNI_ARGS
// values to their checks: an accepted interface name must be one the kernel
// takes (dev_valid_name: 1-15 bytes, not "." or "..", no '/', ':' or
// whitespace); an accepted namespace path must be absolute and, cleaned,
// inside /run/netns, /var/run/netns or /proc/<pid>/ns/net, or a real
// namespace mount; accepted CNI_ARGS values never carry a ';'.
//
//	go test -run '^$' -fuzz FuzzCNIEnvironment ./datapath/cni/
func FuzzCNIEnvironment(f *testing.F) {
	f.Add("eth0", "/run/netns/pod", "K8S_POD_NAMESPACE=x;K8S_POD_NAME=a")
	f.Add("abcdefghijklmnop", "/run/netns/../../etc/passwd", "IgnoreUnknown=1;K8S_POD_UID=u")
	f.Add("..", "/proc/1/ns/net", "K8S_POD_NAME")
	f.Add("a:b", "/proc/1/task/2/ns/net", ";;")
	f.Add("e th0", "relative/netns", "=")
	f.Add("eth\u00a00", "/var/run/netns/x", "K8S_POD_NAME==")
	f.Fuzz(func(t *testing.T, ifname, netnsPath, cniArgs string) {
		if err := ValidateIfName(ifname); err == nil {
			if len(ifname) == 0 || len(ifname) > 15 || ifname == "." || ifname == ".." ||
				strings.ContainsAny(ifname, "/: \t\n\v\f\r") {
				t.Fatalf("ValidateIfName accepted %q, which the kernel refuses", ifname)
			}
		}
		if err := ValidateNetnsPath(netnsPath); err == nil {
			c := filepath.Clean(netnsPath)
			inside := strings.HasPrefix(c, "/run/netns/") || strings.HasPrefix(c, "/var/run/netns/") || procNetns.MatchString(c)
			if !filepath.IsAbs(netnsPath) || strings.Contains(c, "..") && !inside {
				t.Fatalf("ValidateNetnsPath accepted %q (clean %q)", netnsPath, c)
			}
		}
		if pa, err := parseCNIArgs(cniArgs); err == nil {
			for _, v := range []string{pa.Namespace, pa.Name, pa.UID, pa.InfraContainerID} {
				if strings.Contains(v, ";") {
					t.Fatalf("parseCNIArgs(%q) kept a ';' in %q", cniArgs, v)
				}
			}
		}
	})
}
