package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// build compiles the plugin into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cnilab-cni")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// invoke runs the plugin the way a runtime does; no root needed for the cases
// here because each fails (or answers) before touching the network.
func invoke(t *testing.T, bin string, env []string, stdin string) (stdout, stderr string, cniErr *types.Error) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"CNI_PATH=" + filepath.Dir(bin)}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		cniErr = &types.Error{}
		if jerr := json.Unmarshal(out.Bytes(), cniErr); jerr != nil {
			t.Fatalf("exit %v with non-JSON stdout %q (stderr %q)", err, out.String(), errb.String())
		}
	}
	return out.String(), errb.String(), cniErr
}

func TestProtocol(t *testing.T) {
	bin := build(t)
	const good = `{"cniVersion":"1.1.0","name":"cnilab","type":"cnilab-cni","agentSocket":"/nonexistent/cnilab-test.sock","ipamDataDir":"/nonexistent/ipam"}`
	add := func(ifname, netns string) []string {
		return []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_IFNAME=" + ifname, "CNI_NETNS=" + netns}
	}

	if _, stderr, err := invoke(t, bin, nil, ""); err != nil || !strings.Contains(stderr, "cnilab CNI plugin") {
		t.Fatalf("no command: err %v, stderr %q", err, stderr)
	}
	out, _, err := invoke(t, bin, []string{"CNI_COMMAND=VERSION"}, "")
	var v struct{ SupportedVersions []string }
	if err != nil || json.Unmarshal([]byte(out), &v) != nil ||
		!strings.Contains(strings.Join(v.SupportedVersions, ","), "1.0.0,1.1.0") {
		t.Fatalf("VERSION: %s %v", out, err)
	}

	for _, c := range []struct {
		name, stdin string
		env         []string
		code        uint
		mention     string
	}{
		{"malformed config", `{"name":`, add("eth0", "/run/netns/p"), types.ErrDecodingFailure, ""},
		{"unknown cniVersion", strings.Replace(good, `"1.1.0"`, `"9.9.9"`, 1), add("eth0", "/run/netns/p"), types.ErrIncompatibleCNIVersion, "9.9.9"},
		{"unknown field", good[:len(good)-1] + `,"hairpin":true}`, add("eth0", "/run/netns/p"), types.ErrUnsupportedField, "hairpin"},
		{"ifname too long", good, add("abcdefghijklmnop", "/run/netns/p"), types.ErrInvalidEnvironmentVariables, "interface name"},
		{"ifname slash", good, add("et/h0", "/run/netns/p"), types.ErrInvalidEnvironmentVariables, "interface name"},
		{"netns elsewhere", good, add("eth0", "/tmp/pod-netns"), types.ErrInvalidEnvironmentVariables, "CNI_NETNS"},
		{"relative socket", strings.Replace(good, `"/nonexistent/cnilab-test.sock"`, `"agent.sock"`, 1), add("eth0", "/run/netns/p"), types.ErrInvalidNetworkConfig, "agentSocket"},
		{"agent down", good, []string{"CNI_COMMAND=STATUS"}, types.ErrPluginNotAvailable, "/nonexistent/cnilab-test.sock"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := invoke(t, bin, c.env, c.stdin)
			if err == nil || err.Code != c.code || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("got %+v, want code %d mentioning %q", err, c.code, c.mention)
			}
		})
	}
}
