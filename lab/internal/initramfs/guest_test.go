package initramfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/kernels/modinfo/modinfotest"
)

// fakeGuestDirs makes host bin, tools and CNI dirs holding static ELF
// stand-ins (fake modules: ELF without an interpreter) and an init.
func fakeGuestDirs(t *testing.T) GuestOptions {
	t.Helper()
	root := t.TempDir()
	elfData := modinfotest.Module("x=y")
	write := func(dir string, names ...string) string {
		d := filepath.Join(root, dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(d, n), append(elfData, n...), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	return GuestOptions{
		Init:      filepath.Join(write("init", "cnilab-init"), "cnilab-init"),
		BinDir:    write("bin", "cnilab", "cnilab-agent", "cnilab-cni", "cnilab-probe"),
		ToolsDir:  write("tools/bin", "flanneld"),
		CNIBinDir: write("tools/cni/bin", "bridge", "host-local", "loopback", "portmap"),
		CacheDir:  filepath.Join(root, "cache"),
	}
}

func TestGuestSpec(t *testing.T) {
	opts := fakeGuestDirs(t)
	var err error
	opts.ModulesDir, _ = fakeModulesDir(t, []fakeMod{
		{"drivers/net/virtio_net.ko.xz", "virtio,virtio_ring,net_failover"},
		{"drivers/net/net_failover.ko.xz", "failover"},
		{"net/core/failover.ko.xz", ""},
		{"drivers/char/virtio_console.ko.xz", "virtio,virtio_ring"},
		{"drivers/char/hw_random/virtio-rng.ko.xz", "virtio,virtio_ring"},
		{"drivers/net/veth.ko.xz", ""},
		{"drivers/net/vxlan/vxlan.ko.xz", "udp_tunnel"},
		{"net/ipv4/udp_tunnel.ko.xz", ""},
		{"net/bridge/bridge.ko.xz", "stp,llc"},
		{"net/802/stp.ko.xz", "llc"},
		{"net/llc/llc.ko.xz", ""},
		{"net/sched/sch_ingress.ko.xz", ""},
		{"net/sched/cls_bpf.ko.xz", ""},
	}, "kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio_pci.ko")

	spec, err := GuestSpec(opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Warnings) != 1 || !strings.Contains(spec.Warnings[0], "SCTP unavailable") || !strings.Contains(spec.Warnings[0], "sctp not found for kernel "+fakeRelease) {
		t.Errorf("warnings %q, want one saying SCTP unavailable", spec.Warnings)
	}
	wantOrder := "failover net_failover virtio_net virtio_console virtio_rng veth udp_tunnel vxlan llc stp bridge sch_ingress cls_bpf"
	if got := strings.Join(spec.Modules.Order, " "); got != wantOrder {
		t.Errorf("order %s, want %s", got, wantOrder)
	}
	if got := strings.Join(spec.Modules.Builtin, " "); got != "virtio virtio_pci virtio_ring" {
		t.Errorf("builtin %s", got)
	}

	path, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := readNewc(t, b)
	byName := map[string]record{}
	for _, r := range recs {
		byName[r.name] = r
	}
	for name, mode := range map[string]uint32{
		"init":                            0o100755,
		"usr/bin/nsenter":                 0o120777,
		"cnilab/bin/cnilab-agent":         0o100755,
		"cnilab/tools/bin/flanneld":       0o100755,
		"cnilab/tools/cni/bin/host-local": 0o100755,
		"etc/cnilab/modules":              0o100644,
		"etc/passwd":                      0o100644,
		"etc/group":                       0o100644,
		"dev/console":                     0o020600,
		"dev/null":                        0o020666,
		"proc":                            0o040555,
		"sys":                             0o040555,
		"run":                             0o040755,
		"tmp":                             0o041777,
		"var/lib":                         0o040755,
		"var/log":                         0o040755,
		"root":                            0o040700,
		"lib/modules/" + fakeRelease + "/kernel/drivers/char/hw_random/virtio-rng.ko": 0o100644,
	} {
		r, ok := byName[name]
		if !ok {
			t.Errorf("archive has no %s", name)
			continue
		}
		if r.mode != mode {
			t.Errorf("%s: mode %o, want %o", name, r.mode, mode)
		}
	}
	if got := string(byName["usr/bin/nsenter"].data); got != "/init" {
		t.Errorf("nsenter -> %s", got)
	}
	if got := string(byName["etc/cnilab/modules"].data); got != strings.ReplaceAll(wantOrder, " ", "\n")+"\n" {
		t.Errorf("modules list %q", got)
	}
	if _, ok := byName["lib/modules/"+fakeRelease+"/kernel/net/sched/cls_bpf.ko.xz"]; ok {
		t.Error("compressed module in the archive")
	}

	// The same inputs give the same archive.
	spec2, err := GuestSpec(opts)
	if err != nil {
		t.Fatal(err)
	}
	spec2.CacheDir = t.TempDir()
	path2, err := Build(spec2)
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(path2); !bytes.Equal(b, b2) {
		t.Error("GuestSpec archives of the same inputs differ")
	}

	// A required module that is missing fails.
	opts.Modules = []string{"veth", "wireguard"}
	if _, err := GuestSpec(opts); err == nil || !strings.Contains(err.Error(), "module wireguard not found for kernel "+fakeRelease) {
		t.Errorf("missing required module: %v", err)
	}
}

func TestGuestSpecBinaryErrors(t *testing.T) {
	opts := fakeGuestDirs(t)
	opts.ModulesDir, _ = fakeModulesDir(t, []fakeMod{{"veth.ko", ""}})
	opts.Modules = []string{"veth"}
	if _, err := GuestSpec(opts); err != nil {
		t.Fatal(err)
	}

	missing := opts
	os.Remove(filepath.Join(opts.ToolsDir, "flanneld"))
	if _, err := GuestSpec(missing); err == nil || !strings.Contains(err.Error(), "flanneld missing") || !strings.Contains(err.Error(), "make tools") {
		t.Errorf("missing flanneld: %v", err)
	}
	missing.ToolsDir = filepath.Join(opts.ToolsDir, "..", "..", "tools", "bin")
	os.Remove(filepath.Join(opts.BinDir, "cnilab-probe"))
	if _, err := GuestSpec(missing); err == nil || !strings.Contains(err.Error(), "cnilab-probe missing") || !strings.Contains(err.Error(), "make build") {
		t.Errorf("missing cnilab-probe: %v", err)
	}

	// A dynamically linked binary is refused.
	host, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no host `true` to use as a dynamic binary")
	}
	data, err := os.ReadFile(host)
	if err != nil {
		t.Fatal(err)
	}
	dyn := opts
	dyn.Init = filepath.Join(t.TempDir(), "init")
	if err := os.WriteFile(dyn.Init, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := GuestSpec(dyn); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("dynamic init: %v", err)
	}
}
