package cni

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"golang.org/x/sys/unix"
)

// Defaults for the plugin-specific fields.
const (
	DefaultAgentSocket = "/run/cnilab/agent.sock"
	DefaultIPAMDataDir = "/var/lib/cnilab/ipam"
)

// NetConf is cnilab-cni's network configuration: the standard fields a runtime
// sends plus agentSocket, ipamDataDir and mtu.
type NetConf struct {
	types.PluginConf
	// AgentSocket is the cnilab agent's unix socket.
	AgentSocket string `json:"agentSocket"`
	// IPAMDataDir holds the address allocations (see datapath/ipam).
	IPAMDataDir string `json:"ipamDataDir"`
	// MTU of both veth ends; 0 means the agent's.
	MTU int `json:"mtu"`
}

// knownFields are the top-level keys accepted: the standard ones a runtime or
// libcni injects, and cnilab's own. "ipam" is deliberately absent: cnilab
// allocates addresses itself and cannot delegate.
var knownFields = map[string]bool{
	"cniVersion": true, "cniVersions": true, "name": true, "type": true, "args": true,
	"runtimeConfig": true, "capabilities": true, "prevResult": true, "dns": true,
	"disableCheck": true, "disableGC": true, "loadOnlyInlinedPlugins": true,
	"cni.dev/valid-attachments": true, "cni.dev/attachments": true,
	"agentSocket": true, "ipamDataDir": true, "mtu": true,
}

// ParseConfig decodes and validates the network configuration from stdin.
func ParseConfig(stdin []byte) (*NetConf, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(stdin, &raw); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "decode network configuration: "+err.Error(), "")
	}
	var unknown []string
	for k := range raw {
		if !knownFields[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, types.NewError(types.ErrUnsupportedField,
			fmt.Sprintf("unsupported field %q in network configuration", unknown[0]), strings.Join(unknown, ", "))
	}
	conf := &NetConf{AgentSocket: DefaultAgentSocket, IPAMDataDir: DefaultIPAMDataDir}
	if err := json.Unmarshal(stdin, conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "decode network configuration: "+err.Error(), "")
	}
	bad := func(format string, a ...any) error {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf(format, a...), "")
	}
	switch {
	case conf.Name == "":
		return nil, bad("network configuration: missing name")
	case !filepath.IsAbs(conf.AgentSocket):
		return nil, bad("network configuration: agentSocket %q is not an absolute path", conf.AgentSocket)
	case !filepath.IsAbs(conf.IPAMDataDir):
		return nil, bad("network configuration: ipamDataDir %q is not an absolute path", conf.IPAMDataDir)
	case conf.MTU != 0 && (conf.MTU < 68 || conf.MTU > 65535):
		return nil, bad("network configuration: mtu %d out of range (0 or 68..65535)", conf.MTU)
	}
	conf.AgentSocket = filepath.Clean(conf.AgentSocket)
	conf.IPAMDataDir = filepath.Clean(conf.IPAMDataDir)
	return conf, nil
}

// ValidateIfName checks CNI_IFNAME against the kernel's rules.
func ValidateIfName(name string) error {
	bad := func(why string) error {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_IFNAME %q %s", name, why), "")
	}
	switch {
	case name == "":
		return bad("is empty")
	case len(name) > unix.IFNAMSIZ-1:
		return bad(fmt.Sprintf("is longer than %d bytes", unix.IFNAMSIZ-1))
	case name == "." || name == "..":
		return bad("is not a valid interface name")
	case strings.ContainsFunc(name, func(r rune) bool { return r == '/' || r == ':' || unicode.IsSpace(r) }):
		return bad("contains '/', ':' or whitespace")
	}
	return nil
}

var procNetns = regexp.MustCompile(`^/proc/[0-9]+/(task/[0-9]+/)?ns/net$`)

// ValidateNetnsPath accepts a namespace under /run/netns or /var/run/netns,
// /proc/<pid>/ns/net, or any other path that is an nsfs bind mount.
func ValidateNetnsPath(p string) error {
	bad := func(why string) error {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_NETNS %q %s", p, why), "")
	}
	if !filepath.IsAbs(p) {
		return bad("is not an absolute path")
	}
	c := filepath.Clean(p)
	for _, dir := range []string{"/run/netns/", "/var/run/netns/"} {
		if strings.HasPrefix(c, dir) {
			return nil
		}
	}
	if procNetns.MatchString(c) {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(c, &st); err != nil || st.Type != unix.NSFS_MAGIC {
		return bad("is not a network namespace: want a path under /run/netns or /var/run/netns, /proc/<pid>/ns/net, or an nsfs bind mount")
	}
	return nil
}

// validateArgs checks the CNI environment for cmd; DEL may omit CNI_NETNS.
func validateArgs(args *skel.CmdArgs, needNetns bool) error {
	if args.ContainerID == "" {
		return types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_CONTAINERID is empty", "")
	}
	if err := ValidateIfName(args.IfName); err != nil {
		return err
	}
	if args.Netns == "" && !needNetns {
		return nil
	}
	if args.Netns == "" {
		return types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_NETNS is empty", "")
	}
	return ValidateNetnsPath(args.Netns)
}

// podArgs are the Kubernetes identifiers a runtime passes in CNI_ARGS.
type podArgs struct {
	Namespace, Name, UID, InfraContainerID string
}

// parseCNIArgs reads K8S_POD_* from CNI_ARGS ("K=V;K=V"); other keys are
// ignored, as if IgnoreUnknown were always set.
func parseCNIArgs(s string) (podArgs, error) {
	var pa podArgs
	for _, kv := range strings.Split(s, ";") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return pa, types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_ARGS: invalid pair %q", kv), "")
		}
		switch k {
		case "K8S_POD_NAMESPACE":
			pa.Namespace = v
		case "K8S_POD_NAME":
			pa.Name = v
		case "K8S_POD_UID":
			pa.UID = v
		case "K8S_POD_INFRA_CONTAINER_ID":
			pa.InfraContainerID = v
		}
	}
	return pa, nil
}
