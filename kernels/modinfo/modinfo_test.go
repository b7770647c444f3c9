package modinfo

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/cnilab/cnilab/kernels/modinfo/modinfotest"
)

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"virtio-rng":                           "virtio_rng",
		"virtio_pci":                           "virtio_pci",
		"kernel/net/bridge/bridge.ko":          "bridge",
		"/lib/modules/6.1/kernel/x/mid-one.ko": "mid_one",
		"net/sub/mid-one.ko.xz":                "mid_one",
		"lib/leaf.ko.zst":                      "leaf",
		"lib/other.ko.gz":                      "other",
		"a.ko.bz2":                             "a.ko.bz2",
	} {
		if got := Canonical(in); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSuffix(t *testing.T) {
	for in, want := range map[string]string{
		"a.ko": ".ko", "a.ko.zst": ".ko.zst", "a.ko.xz": ".ko.xz", "a.ko.gz": ".ko.gz",
		"a.ko.bz2": "", "a": "", "modules.dep": "",
	} {
		if got := Suffix(in); got != want {
			t.Errorf("Suffix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	info, err := Parse(modinfotest.Module("alias=a", "depends=b,c-d", "alias=b", "name=x"))
	if err != nil {
		t.Fatal(err)
	}
	if info["alias"] != "a\nb" || info["name"] != "x" {
		t.Fatalf("info %q", info)
	}
	if got := info.Depends(); !reflect.DeepEqual(got, []string{"b", "c_d"}) {
		t.Fatalf("depends %q", got)
	}
	if got := (Info{"depends": ""}).Depends(); got != nil {
		t.Fatalf("empty depends: %q", got)
	}
	if _, err := Parse([]byte("not an elf")); err == nil {
		t.Fatal("no error for garbage")
	}
	if _, err := Parse(modinfotest.Module()); err != nil {
		t.Fatalf("empty .modinfo: %v", err)
	}
}

// TestParseFromCompiler checks Parse on an object the C compiler made, the
// way the kernel build puts MODULE_INFO strings in .modinfo.
func TestParseFromCompiler(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is not installed; TestParse covers a hand-made ELF")
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
	info, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Depends(); !reflect.DeepEqual(got, []string{"b", "c_x"}) || info["name"] != "m" {
		t.Fatalf("depends %q, info %q", got, info)
	}
}

// TestRealModule reads a real module: the running kernel's bridge.ko or a
// fetched kernel's, when one is installed uncompressed.
func TestRealModule(t *testing.T) {
	mods, _ := filepath.Glob("/lib/modules/*/kernel/net/bridge/bridge.ko")
	fetched, _ := filepath.Glob("../../_output/kernels/*/lib/modules/*/kernel/net/bridge/bridge.ko")
	mods = append(mods, fetched...)
	if len(mods) == 0 {
		t.Skip("no uncompressed bridge.ko here or under _output/kernels to read; TestParse covers a made-up module")
	}
	b, err := os.ReadFile(mods[0])
	if err != nil {
		t.Fatal(err)
	}
	info, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	d := info.Depends()
	sort.Strings(d)
	if !reflect.DeepEqual(d, []string{"llc", "stp"}) || info["name"] != "bridge" {
		t.Fatalf("%s: depends %q, name %q", mods[0], d, info["name"])
	}
}
