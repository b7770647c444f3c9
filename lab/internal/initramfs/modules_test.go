package initramfs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/cnilab/cnilab/kernels/modinfo"
	"github.com/cnilab/cnilab/kernels/modinfo/modinfotest"
)

// compress returns data as a module file ending in suffix holds it.
func compress(t *testing.T, suffix string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	var err error
	switch suffix {
	case ".ko":
		return data
	case ".ko.xz":
		w, err = xz.NewWriter(&b)
	case ".ko.zst":
		w, err = zstd.NewWriter(&b)
	case ".ko.gz":
		w = gzip.NewWriter(&b)
	default:
		t.Fatalf("suffix %s", suffix)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const fakeRelease = "6.1.0-99-test"

type fakeMod struct {
	path    string // under kernel/, with suffix
	depends string
}

// fakeModulesDir makes …/lib/modules/<fakeRelease> with the given modules and
// modules.builtin lines, and returns it and each module's plain ELF bytes.
func fakeModulesDir(t *testing.T, mods []fakeMod, builtin ...string) (string, map[string][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lib", "modules", fakeRelease)
	plain := map[string][]byte{}
	for _, m := range mods {
		name := modinfo.Canonical(m.path)
		elfData := modinfotest.Module("license=GPL", "depends="+m.depends, "retpoline=Y", "intree=Y",
			"name="+name, "vermagic="+fakeRelease+" SMP mod_unload modversions ")
		plain[name] = elfData
		p := filepath.Join(dir, "kernel", m.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, compress(t, modinfo.Suffix(m.path), elfData), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	var bl strings.Builder
	for _, b := range builtin {
		bl.WriteString(b + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte(bl.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, plain
}

func TestModules(t *testing.T) {
	dir, plain := fakeModulesDir(t, []fakeMod{
		{"net/top.ko", "mid-one,leaf"},
		{"net/sub/mid-one.ko.xz", "leaf,inkernel"},
		{"lib/leaf.ko.zst", ""},
		{"lib/other.ko.gz", "leaf"},
		{"drivers/unused.ko", "missing"},
	}, "kernel/lib/inkernel.ko", "kernel/drivers/virtio/virtio_pci.ko")

	files, order, err := Modules(dir, []string{"top", "virtio-pci", "other", "leaf"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"leaf", "mid_one", "top", "other"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("order %q, want %q", order, want)
	}
	wantPaths := []string{
		"/lib/modules/" + fakeRelease + "/kernel/lib/leaf.ko",
		"/lib/modules/" + fakeRelease + "/kernel/net/sub/mid-one.ko",
		"/lib/modules/" + fakeRelease + "/kernel/net/top.ko",
		"/lib/modules/" + fakeRelease + "/kernel/lib/other.ko",
	}
	if len(files) != len(wantPaths) {
		t.Fatalf("%d files, want %d", len(files), len(wantPaths))
	}
	for i, f := range files {
		if f.Path != wantPaths[i] || f.Kind != KindFile {
			t.Errorf("file %d: %s (%v), want %s", i, f.Path, f.Kind, wantPaths[i])
		}
		if !bytes.Equal(f.Data, plain[order[i]]) {
			t.Errorf("%s: content is not the plain module", f.Path)
		}
	}

	// Missing: the error names the module and the release.
	_, _, err = Modules(dir, []string{"sctp"})
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Module != "sctp" || !strings.Contains(err.Error(), "module sctp not found for kernel "+fakeRelease+": neither a .ko under") {
		t.Fatalf("missing module: %v", err)
	}
	// A missing dependency says who needs it.
	_, _, err = Modules(dir, []string{"unused"})
	if err == nil || !strings.Contains(err.Error(), "module missing not found") || !strings.Contains(err.Error(), "needed by unused") {
		t.Fatalf("missing dependency: %v", err)
	}
	// Not a modules directory.
	if _, _, err := Modules(t.TempDir(), []string{"x"}); err == nil {
		t.Fatal("no error for a directory without kernel/")
	}
}

func TestModulesOptionalAndReport(t *testing.T) {
	dir, _ := fakeModulesDir(t, []fakeMod{
		{"a.ko", "b"},
		{"b.ko", ""},
		{"sctp.ko", "libgone"},
	}, "kernel/x/builtin1.ko")
	files, rep, err := resolveModules(dir, fakeRelease, []string{"a", "builtin1", "sctp", "nope"}, map[string]bool{"sctp": true, "nope": true})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.Order, []string{"b", "a"}) || !reflect.DeepEqual(rep.Builtin, []string{"builtin1"}) ||
		!reflect.DeepEqual(rep.Missing, []string{"sctp", "nope"}) || len(files) != 2 {
		t.Fatalf("report %+v, %d files", rep, len(files))
	}
}

func TestModulesCycleAndVermagic(t *testing.T) {
	dir, _ := fakeModulesDir(t, []fakeMod{{"a.ko", "b"}, {"b.ko", "c"}, {"c.ko", "a"}})
	if _, _, err := Modules(dir, []string{"a"}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("cycle: %v", err)
	}
	// The same modules under another release name: vermagic does not match.
	other := filepath.Join(filepath.Dir(dir), "6.12.0-other")
	if err := os.Rename(dir, other); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Modules(other, []string{"a"}); err == nil || !strings.Contains(err.Error(), "was built for kernel "+fakeRelease) {
		t.Fatalf("vermagic: %v", err)
	}
}

// realModulesDirs are the Debian kernels' module directories present on this
// machine: those fetched into _output/kernels, and CNILAB_TEST_MODULES_DIR.
func realModulesDirs() []string {
	dirs, _ := filepath.Glob("../../../_output/kernels/*/lib/modules/*")
	if d := os.Getenv("CNILAB_TEST_MODULES_DIR"); d != "" {
		dirs = append(dirs, filepath.SplitList(d)...)
	}
	return dirs
}

func TestModulesRealKernel(t *testing.T) {
	dirs := realModulesDirs()
	if len(dirs) == 0 {
		t.Skip("no kernel modules under _output/kernels/*/lib/modules (fetch kernels first) and CNILAB_TEST_MODULES_DIR unset")
	}
	want := []string{"virtio_net", "virtio_console", "virtio_rng", "veth", "vxlan", "bridge", "sch_ingress", "cls_bpf", "sctp"}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			files, order, err := Modules(dir, want)
			if err != nil {
				t.Fatal(err)
			}
			_, rep, err := resolveModules(dir, filepath.Base(dir), append([]string{"virtio_pci"}, want...), nil)
			if err != nil {
				t.Fatal(err)
			}
			var size int
			for _, f := range files {
				size += len(f.Data)
				if _, err := modinfo.Parse(f.Data); err != nil {
					t.Errorf("%s: %v", f.Path, err)
				}
			}
			t.Logf("kernel %s: load order (%d modules, %d KiB plain): %s", filepath.Base(dir), len(order), size/1024, strings.Join(order, " "))
			t.Logf("kernel %s: built in: %s", filepath.Base(dir), strings.Join(rep.Builtin, " "))
			pos := map[string]int{}
			for i, m := range order {
				pos[m] = i
			}
			for i, f := range files {
				info, _ := modinfo.Parse(f.Data)
				for _, d := range info.Depends() {
					if j, ok := pos[d]; ok && j >= i {
						t.Errorf("%s loads before its dependency %s", order[i], d)
					}
				}
			}
		})
	}
}
