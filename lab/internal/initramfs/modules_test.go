package initramfs

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// fakeModule returns a minimal ELF64 relocatable object whose only content
// is a .modinfo section holding the given key=value fields, like a kernel
// module's.
func fakeModule(t *testing.T, fields ...string) []byte {
	t.Helper()
	modinfo := []byte(strings.Join(fields, "\x00") + "\x00")
	shstrtab := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehdrSize, shdrSize = 64, 64
	modinfoOff := uint64(ehdrSize)
	shstrOff := modinfoOff + uint64(len(modinfo))
	shOff := (shstrOff + uint64(len(shstrtab)) + 7) &^ 7

	var b bytes.Buffer
	var ident [elf.EI_NIDENT]byte
	copy(ident[:], elf.ELFMAG)
	ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	hdr := elf.Header64{
		Ident:     ident,
		Type:      uint16(elf.ET_REL),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Shoff:     shOff,
		Ehsize:    ehdrSize,
		Shentsize: shdrSize,
		Shnum:     3,
		Shstrndx:  2,
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(binary.Write(&b, binary.LittleEndian, hdr))
	b.Write(modinfo)
	b.Write(shstrtab)
	b.Write(make([]byte, int(shOff)-b.Len()))
	for _, sh := range []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: modinfoOff, Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: shstrOff, Size: uint64(len(shstrtab)), Addralign: 1},
	} {
		must(binary.Write(&b, binary.LittleEndian, sh))
	}
	return b.Bytes()
}

func compress(t *testing.T, suffix string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	switch suffix {
	case ".ko":
		return data
	case ".ko.xz":
		w, err := xz.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case ".ko.zst":
		w, err := zstd.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case ".ko.gz":
		w := gzip.NewWriter(&b)
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("suffix %s", suffix)
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
		name := CanonicalModule(m.path)
		elfData := fakeModule(t, "license=GPL", "depends="+m.depends, "retpoline=Y", "intree=Y",
			"name="+name, "vermagic="+fakeRelease+" SMP mod_unload modversions ")
		plain[name] = elfData
		p := filepath.Join(dir, "kernel", m.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, compress(t, moduleSuffix(m.path), elfData), 0o644); err != nil {
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

func TestModInfo(t *testing.T) {
	info, err := ModInfo(fakeModule(t, "alias=a", "depends=b,c-d", "alias=b", "name=x"))
	if err != nil {
		t.Fatal(err)
	}
	if info["alias"] != "a\nb" || info["name"] != "x" {
		t.Fatalf("info %q", info)
	}
	if got := ModuleDepends(info); !reflect.DeepEqual(got, []string{"b", "c_d"}) {
		t.Fatalf("depends %q", got)
	}
	if got := ModuleDepends(map[string]string{"depends": ""}); got != nil {
		t.Fatalf("empty depends: %q", got)
	}
	if _, err := ModInfo([]byte("not an elf")); err == nil {
		t.Fatal("no error for garbage")
	}
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

// TestModInfoFromCompiler checks ModInfo on an object the C compiler made,
// the way the kernel build puts MODULE_INFO strings in .modinfo.
func TestModInfoFromCompiler(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is not installed; TestModInfo covers a hand-made ELF")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "m.c")
	code := `__attribute__((section(".modinfo"), used)) static const char a[] = "depends=b,c-x";
__attribute__((section(".modinfo"), used)) static const char n[] = "name=m";
int f(void) { return 0; }
`
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(dir, "m.ko")
	if out, err := exec.Command(cc, "-c", "-o", obj, src).CombinedOutput(); err != nil {
		t.Skipf("gcc -c failed: %v\n%s", err, out)
	}
	data, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ModInfo(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := ModuleDepends(info); !reflect.DeepEqual(got, []string{"b", "c_x"}) || info["name"] != "m" {
		t.Fatalf("depends %q, info %q", got, info)
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
				if _, err := ModInfo(f.Data); err != nil {
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
				info, _ := ModInfo(f.Data)
				for _, d := range ModuleDepends(info) {
					if j, ok := pos[d]; ok && j >= i {
						t.Errorf("%s loads before its dependency %s", order[i], d)
					}
				}
			}
		})
	}
}
