package main

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseCmdline(t *testing.T) {
	cfg, err := parseCmdline("BOOT_IMAGE=/vmlinuz console=ttyS0 panic=-1 cnilab.ip=172.30.0.11/24 cnilab.hostname=test-node-1 quiet\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IP != netip.MustParsePrefix("172.30.0.11/24") || cfg.Hostname != "test-node-1" {
		t.Fatalf("got %+v", cfg)
	}
	// The address is kept, not masked.
	if cfg.IP.Addr().String() != "172.30.0.11" {
		t.Fatalf("address %s", cfg.IP.Addr())
	}

	cfg, err = parseCmdline(`console=ttyS0 foo="a b cnilab.ip=1.2.3.4/8" cnilab.hostname="node-2"`)
	if err != nil || cfg.IP.IsValid() || cfg.Hostname != "node-2" {
		t.Fatalf("quoted: %+v, %v", cfg, err)
	}

	cfg, err = parseCmdline("cnilab.ip=fd00::5/64 cnilab.hostname=a.b-c.d")
	if err != nil || cfg.IP.String() != "fd00::5/64" || cfg.Hostname != "a.b-c.d" {
		t.Fatalf("ipv6: %+v, %v", cfg, err)
	}

	cfg, err = parseCmdline("")
	if err != nil || cfg.IP.IsValid() || cfg.Hostname != "" {
		t.Fatalf("empty: %+v, %v", cfg, err)
	}

	// Invalid values: an error, the valid part still returned.
	for _, bad := range []string{"cnilab.ip=172.30.0.11", "cnilab.ip=banana/24", "cnilab.ip=0.0.0.0/0",
		"cnilab.hostname=-x", "cnilab.hostname=a_b", "cnilab.hostname=" + strings.Repeat("a", 65), "cnilab.hostname=a..b", "cnilab.hostname="} {
		cfg, err := parseCmdline("cnilab.hostname=ok " + bad)
		if err == nil {
			t.Errorf("%s: no error", bad)
			continue
		}
		if strings.HasPrefix(bad, "cnilab.ip") && cfg.Hostname != "ok" {
			t.Errorf("%s: valid hostname lost", bad)
		}
	}
}

func TestSplitCmdline(t *testing.T) {
	got := splitCmdline("  a=1  b=\"x y\"\tc \"d e\"=f\n")
	want := []string{"a=1", "b=x y", "c", "d e=f"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestModuleOrder(t *testing.T) {
	deps := map[string][]string{
		"sctp":         {"udp_tunnel", "ip6_udp_tunnel", "libcrc32c"},
		"vxlan":        {"udp_tunnel", "ip6_udp_tunnel"},
		"bridge":       {"stp", "llc"},
		"stp":          {"llc"},
		"virtio_net":   {"virtio_ring", "virtio", "net-failover"},
		"net_failover": {"failover"},
		"cyc_a":        {"cyc_b"},
		"cyc_b":        {"cyc_a"},
	}
	get := func(n string) []string { return deps[n] }
	got := moduleOrder([]string{"virtio-net", "bridge", "vxlan", "sctp", "llc", "cyc_a"}, get)
	want := []string{"virtio_ring", "virtio", "failover", "net_failover", "virtio_net", "llc", "stp", "bridge",
		"udp_tunnel", "ip6_udp_tunnel", "vxlan", "libcrc32c", "sctp", "cyc_b", "cyc_a"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestParseModulesList(t *testing.T) {
	got := parseModulesList([]byte("virtio_pci\n\n# comment\nvirtio-rng  \n sctp # optional\n"))
	if want := []string{"virtio_pci", "virtio_rng", "sctp"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestParseNsenterArgs(t *testing.T) {
	ns, argv, err := parseNsenterArgs([]string{"--net=/run/netns/node-1", "--", "cnilab-probe", "serve", "--port", "80"})
	if err != nil || ns != "/run/netns/node-1" || !reflect.DeepEqual(argv, []string{"cnilab-probe", "serve", "--port", "80"}) {
		t.Fatalf("got %q %q %v", ns, argv, err)
	}
	ns, argv, err = parseNsenterArgs([]string{"--net=/run/netns/x", "--", "ip"})
	if err != nil || ns != "/run/netns/x" || !reflect.DeepEqual(argv, []string{"ip"}) {
		t.Fatalf("got %q %q %v", ns, argv, err)
	}
	for _, bad := range [][]string{
		nil,
		{"--net=/run/netns/x"},
		{"--net=/run/netns/x", "--"},
		{"--net=/run/netns/x", "ip", "a"},
		{"--net", "/run/netns/x", "--", "ip"},
		{"--net=", "--", "ip"},
		{"-n", "/run/netns/x", "--", "ip"},
		{"--mount=/x", "--", "ip"},
		{"--net=/run/netns/x", "--", ""},
		{"--target", "1", "--net", "--", "ip"},
	} {
		if _, _, err := parseNsenterArgs(bad); err == nil || !strings.Contains(err.Error(), nsenterUsage) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestMain(m *testing.M) {
	// TestNsenterExec runs this test binary as "nsenter".
	if filepath.Base(os.Args[0]) == "nsenter" {
		os.Exit(nsenterMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestNsenterExec runs the stand-in for real: it must enter the network
// namespace of another process and exec the program found in PATH with the
// environment unchanged.
func TestNsenterExec(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("entering a network namespace needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) is not installed; nothing to make a network namespace with")
	}
	holder := exec.Command(unshare, "--net", "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	nsFile := filepath.Join("/proc", strconv.Itoa(holder.Process.Pid), "ns", "net")
	var want string
	for i := 0; i < 100; i++ { // until unshare has made the namespace
		if want, err = os.Readlink(nsFile); err == nil {
			if self, _ := os.Readlink("/proc/self/ns/net"); want != self {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "nsenter")
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, "--net="+nsFile, "--", "sh", "-c", "readlink /proc/self/ns/net; echo $CNILAB_TEST_ENV")
	cmd.Env = append(os.Environ(), "CNILAB_TEST_ENV=kept")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); len(got) != 2 || got[0] != want || got[1] != "kept" {
		t.Fatalf("nsenter printed %q, want [%s kept]", got, want)
	}

	out, err = exec.Command(link, "-n", nsFile, "sh").CombinedOutput()
	if err == nil || !strings.Contains(string(out), nsenterUsage) {
		t.Fatalf("unsupported form: %v\n%s", err, out)
	}
}

func TestFindPort(t *testing.T) {
	sys := t.TempDir()
	for port, name := range map[string]string{"vport0p1": "org.qemu.guest_agent.0", "vport1p1": "cnilab.ctl\n", "vport1p2": ""} {
		if err := os.MkdirAll(filepath.Join(sys, port), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, port, "name"), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := findPort(sys, "cnilab.ctl"); got != "/dev/vport1p1" {
		t.Fatalf("got %q", got)
	}
	if got := findPort(sys, "other"); got != "" {
		t.Fatalf("got %q for a missing port", got)
	}
}

func TestHasNetworkController(t *testing.T) {
	sys := t.TempDir()
	dev := func(name, class string) {
		if err := os.MkdirAll(filepath.Join(sys, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, name, "class"), []byte(class+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dev("0000:00:00.0", "0x060000") // host bridge
	dev("0000:00:02.0", "0x078000") // virtio-serial (communication controller)
	if hasNetworkController(sys) {
		t.Fatal("no network controller, but found one")
	}
	dev("0000:00:03.0", "0x020000") // virtio-net
	if !hasNetworkController(sys) {
		t.Fatal("network controller not found")
	}
}
