package initramfs

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/cnilab/cnilab/kernels/modinfo"
)

// DefaultModules are the kernel modules a lab guest loads (with their
// dependencies). virtio_pci comes first: on kernels that build it as a module
// (Debian 6.1) no virtio device exists before it is loaded, and no module
// depends on it.
var DefaultModules = []string{
	"virtio_pci", "virtio_net", "virtio_console", "virtio_rng",
	"veth", "vxlan", "bridge", "sch_ingress", "cls_bpf", "sctp",
}

// OptionalModules are the modules a guest can do without: when the kernel
// lacks one, GuestSpec reports it in Spec.Warnings and Spec.Modules.Missing
// instead of failing.
var OptionalModules = []string{"sctp"}

// Guest paths.
const (
	GuestInit         = "/init"
	GuestNsenter      = "/usr/bin/nsenter"
	GuestBinDir       = "/cnilab/bin"
	GuestToolsBinDir  = "/cnilab/tools/bin"
	GuestCNIBinDir    = "/cnilab/tools/cni/bin"
	GuestModulesList  = "/etc/cnilab/modules"
	GuestModulesRoot  = "/lib/modules"
	GuestPATH         = GuestBinDir + ":" + GuestToolsBinDir + ":" + GuestCNIBinDir + ":/usr/bin:/bin"
	guestConsoleMajor = 5
	guestConsoleMinor = 1
	guestNullMajor    = 1
	guestNullMinor    = 3
)

// The binaries the guest gets from each host directory.
var (
	guestBinaries      = []string{"cnilab", "cnilab-agent", "cnilab-cni", "cnilab-probe"}
	guestToolsBinaries = []string{"flanneld"}
	guestCNIBinaries   = []string{"bridge", "host-local", "loopback", "portmap"}
)

// toolsBinaries are the tools the guest gets: flanneld, and kube-proxy when
// the nodes run it.
func (o GuestOptions) toolsBinaries() []string {
	if o.KubeProxy {
		return append(append([]string(nil), guestToolsBinaries...), "kube-proxy")
	}
	return guestToolsBinaries
}

// GuestOptions are the inputs of a lab guest's archive.
type GuestOptions struct {
	// Init is the host path of the built, static cnilab-init.
	Init string
	// BinDir is the host _output/bin (cnilab, cnilab-agent, cnilab-cni,
	// cnilab-probe).
	BinDir string
	// KubeProxy puts kube-proxy from ToolsDir into the guest.
	KubeProxy bool
	// ToolsDir is the host _output/tools/bin (flanneld, kube-proxy).
	ToolsDir string
	// CNIBinDir is the host _output/tools/cni/bin (bridge, host-local,
	// loopback, portmap).
	CNIBinDir string
	// ModulesDir is the kernel's host …/lib/modules/<release>.
	ModulesDir string
	// Release is the kernel release (uname -r in the guest); empty means
	// ModulesDir's base name.
	Release string
	// Modules are the modules to load; nil means DefaultModules. Those in
	// OptionalModules may be missing.
	Modules []string
	// CacheDir is where Build writes the archive.
	CacheDir string
	// HostPrograms are dynamically linked programs of this machine the
	// guest needs, copied with their libraries (iptables for flanneld).
	HostPrograms []HostProgram
}

// GuestSpec returns the spec of a lab guest's archive:
//
//	/init                      cnilab-init (PID 1)
//	/usr/bin/nsenter -> /init  its nsenter stand-in
//	/cnilab/bin/*              cnilab, cnilab-agent, cnilab-cni, cnilab-probe
//	/cnilab/tools/bin/flanneld
//	/cnilab/tools/cni/bin/*    bridge, host-local, loopback, portmap
//	/lib/modules/<release>/…   the modules and their dependencies, plain .ko
//	/etc/cnilab/modules        their load order, one name a line
//	/etc/passwd, /etc/group    root
//	/dev/console, /dev/null    so the kernel gives /init a console
//
// plus the empty directories init mounts on or the programs write to. Every
// binary must exist and be statically linked (the guest has no C library).
func GuestSpec(opts GuestOptions) (Spec, error) {
	rel := opts.Release
	if rel == "" {
		rel = filepath.Base(filepath.Clean(opts.ModulesDir))
	}
	spec := Spec{CacheDir: opts.CacheDir}
	if opts.ModulesDir == "" {
		return spec, errors.New("initramfs: guest: no kernel modules directory given")
	}
	if strings.ContainsAny(rel, "/\x00") || rel == "." || rel == ".." {
		return spec, fmt.Errorf("initramfs: guest: invalid kernel release %q", rel)
	}

	if err := checkBinary(opts.Init, "cnilab-init", "make build"); err != nil {
		return spec, err
	}
	spec.Files = append(spec.Files,
		File{Path: GuestInit, Kind: KindFile, Mode: 0o755, Source: opts.Init},
		File{Path: GuestNsenter, Kind: KindSymlink, Target: GuestInit},
	)
	for _, set := range []struct {
		hostDir, guestDir, hint string
		names                   []string
	}{
		{opts.BinDir, GuestBinDir, "make build", guestBinaries},
		{opts.ToolsDir, GuestToolsBinDir, "make tools", opts.toolsBinaries()},
		{opts.CNIBinDir, GuestCNIBinDir, "make tools", guestCNIBinaries},
	} {
		for _, n := range set.names {
			if set.hostDir == "" {
				return spec, fmt.Errorf("initramfs: guest binary %s: no host directory given (run `%s`)", n, set.hint)
			}
			src := filepath.Join(set.hostDir, n)
			if err := checkBinary(src, n, set.hint); err != nil {
				return spec, err
			}
			spec.Files = append(spec.Files, File{Path: path.Join(set.guestDir, n), Kind: KindFile, Mode: 0o755, Source: src})
		}
	}

	for _, p := range opts.HostPrograms {
		files, err := hostProgramFiles(p)
		if err != nil {
			return spec, fmt.Errorf("initramfs: guest: %w", err)
		}
		spec.Files = append(spec.Files, files...)
	}

	want := opts.Modules
	if want == nil {
		want = DefaultModules
	}
	optional := map[string]bool{}
	for _, m := range OptionalModules {
		optional[modinfo.Canonical(m)] = true
	}
	if len(opts.HostPrograms) > 0 {
		want = append(append([]string(nil), want...), NetfilterModules...)
		for _, m := range NetfilterModules {
			optional[modinfo.Canonical(m)] = true
		}
	}
	mods, rep, err := resolveModules(opts.ModulesDir, rel, want, optional)
	if err != nil {
		return spec, fmt.Errorf("initramfs: guest: %w", err)
	}
	spec.Modules = rep
	for _, m := range rep.Missing {
		spec.Warnings = append(spec.Warnings, fmt.Sprintf("module %s not found for kernel %s (neither a .ko under %s nor built in): %s unavailable",
			m, rel, filepath.Join(opts.ModulesDir, "kernel"), strings.ToUpper(m)))
	}
	spec.Files = append(spec.Files, mods...)
	list := strings.Join(rep.Order, "\n")
	if list != "" {
		list += "\n"
	}
	spec.Files = append(spec.Files,
		File{Path: GuestModulesList, Kind: KindFile, Mode: 0o644, Data: []byte(list)},
		File{Path: path.Join(GuestModulesRoot, rel), Kind: KindDir, Mode: 0o755},
		File{Path: "/etc/passwd", Kind: KindFile, Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\n")},
		File{Path: "/etc/group", Kind: KindFile, Mode: 0o644, Data: []byte("root:x:0:\n")},
		File{Path: "/dev/console", Kind: KindCharDev, Mode: 0o600, Major: guestConsoleMajor, Minor: guestConsoleMinor},
		File{Path: "/dev/null", Kind: KindCharDev, Mode: 0o666, Major: guestNullMajor, Minor: guestNullMinor},
	)
	for _, d := range []struct {
		p    string
		mode fs.FileMode
	}{
		{"/proc", 0o555}, {"/sys", 0o555}, {"/dev", 0o755}, {"/run", 0o755},
		{"/tmp", 0o777 | fs.ModeSticky}, {"/etc", 0o755}, {"/var/lib", 0o755},
		{"/var/log", 0o755}, {"/root", 0o700},
	} {
		spec.Files = append(spec.Files, File{Path: d.p, Kind: KindDir, Mode: d.mode})
	}
	return spec, nil
}

// checkBinary checks that a guest binary exists and is a static ELF
// executable.
func checkBinary(p, name, hint string) error {
	if p == "" {
		return fmt.Errorf("initramfs: guest binary %s: no path given (run `%s`)", name, hint)
	}
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("initramfs: guest binary %s missing (run `%s`): %w", p, hint, err)
		}
		return fmt.Errorf("initramfs: guest binary %s: %w", p, err)
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("initramfs: guest binary %s is not an executable file (run `%s`)", p, hint)
	}
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("initramfs: guest binary %s is not an ELF executable: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("initramfs: guest binary %s is dynamically linked, and the guest has no C library: build it with CGO_ENABLED=0", p)
		}
	}
	return nil
}
