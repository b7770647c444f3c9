package kernels

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// catalogEntry returns the entry name of the embedded catalog.
func catalogEntry(t *testing.T, name string) Entry {
	t.Helper()
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Find(name)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEmbeddedCatalog(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"6.1", "6.12", "ci-5.10", "ci-5.15", "ci-6.1", "ci-6.6", "ci-6.12", "local"}
	for _, n := range want {
		e, err := c.Find(n)
		if err != nil {
			t.Errorf("Find(%q): %v", n, err)
			continue
		}
		if e.Note == "" {
			t.Errorf("kernel %s has no note", n)
		}
	}
	types := map[string]int{}
	for _, e := range c {
		if err := e.Validate(); err != nil {
			t.Errorf("%s: %v", e.Name, err)
		}
		types[e.Source.Type]++
		if e.Source.Type == TypeOCI && !strings.HasPrefix(e.Source.Image, "ghcr.io/cilium/ci-kernels:") {
			t.Errorf("%s: image %s is not in ghcr.io/cilium/ci-kernels", e.Name, e.Source.Image)
		}
	}
	if types[TypeDebian] != 2 || types[TypeOCI] != 5 || types[TypeLocal] != 1 {
		t.Errorf("source types %v, want 2 debian, 5 oci, 1 local", types)
	}
	e, _ := c.Find("6.1")
	if e.Source.Package != "linux-image-6.1.*-cloud-amd64-unsigned" {
		t.Errorf("6.1 package %q", e.Source.Package)
	}
}

func TestFindErrors(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Find("4.19")
	if err == nil {
		t.Fatal("Find(4.19) found a kernel")
	}
	for _, s := range []string{`unknown kernel "4.19"`, "6.1, 6.12, ci-5.10", "local"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	_, err = c.Find("5.10")
	if err == nil || !strings.Contains(err.Error(), "did you mean ci-5.10?") {
		t.Errorf("Find(5.10): %v, want a hint at ci-5.10", err)
	}
}

func TestParseRejects(t *testing.T) {
	for name, js := range map[string]string{
		"empty":          `[]`,
		"not a list":     `{"name":"x"}`,
		"unknown field":  `[{"name":"a","source":{"type":"debian","package":"linux-image-*","pakage":"x"}}]`,
		"bad name":       `[{"name":"A b","source":{"type":"debian","package":"linux-image-*"}}]`,
		"dotdot name":    `[{"name":"..","source":{"type":"debian","package":"linux-image-*"}}]`,
		"duplicate":      `[{"name":"a","source":{"type":"debian","package":"linux-a"}},{"name":"a","source":{"type":"debian","package":"linux-b"}}]`,
		"no package":     `[{"name":"a","source":{"type":"debian"}}]`,
		"debian + image": `[{"name":"a","source":{"type":"debian","package":"linux-a","image":"x:1"}}]`,
		"bad glob":       `[{"name":"a","source":{"type":"debian","package":"linux-[ab]"}}]`,
		"no image":       `[{"name":"a","source":{"type":"oci"}}]`,
		"bad image":      `[{"name":"a","source":{"type":"oci","image":"Ghcr.io/UPPER:tag"}}]`,
		"empty layout":   `[{"name":"a","source":{"type":"oci","image":"oci-layout:"}}]`,
		"no vmlinuz":     `[{"name":"a","source":{"type":"local","modules":"/lib/modules/6.1"}}]`,
		"unknown type":   `[{"name":"a","source":{"type":"rpm","package":"kernel"}}]`,
		"trailing data":  `[{"name":"a","source":{"type":"debian","package":"p"}}] []`,
	} {
		if _, err := Parse([]byte(js)); err == nil {
			t.Errorf("%s: Parse accepted %s", name, js)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestLoadFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "catalog.json")
	js := `[{"name":"mine","source":{"type":"oci","image":"oci-layout:/srv/kernels:6.6"},"note":"test"}]`
	if err := os.WriteFile(f, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Find("mine")
	if err != nil || e.Source.Image != "oci-layout:/srv/kernels:6.6" {
		t.Fatalf("Find(mine) = %+v, %v", e, err)
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("LoadFile of a missing file succeeded")
	}
}

func TestParseLayoutRef(t *testing.T) {
	for _, c := range []struct{ ref, dir, tag string }{
		{"oci-layout:/srv/k", "/srv/k", ""},
		{"oci-layout:/srv/k:6.6", "/srv/k", "6.6"},
		{"oci-layout:rel/dir:latest", "rel/dir", "latest"},
		{"oci-layout:/a:b/c", "/a:b/c", ""},
	} {
		dir, tag, ok := parseLayoutRef(c.ref)
		if !ok || dir != c.dir || tag != c.tag {
			t.Errorf("parseLayoutRef(%q) = %q, %q, %v; want %q, %q", c.ref, dir, tag, ok, c.dir, c.tag)
		}
	}
	if _, _, ok := parseLayoutRef("ghcr.io/cilium/ci-kernels:6.6"); ok {
		t.Error("a registry reference parsed as a layout")
	}
}

func TestGlobRegexp(t *testing.T) {
	if got, want := GlobRegexp("linux-image-6.1.*-cloud-amd64-unsigned"), `^linux-image-6\.1\..*-cloud-amd64-unsigned$`; got != want {
		t.Errorf("GlobRegexp = %s, want %s", got, want)
	}
	if got, want := GlobRegexp("linux-image-6.12.*+deb12-cloud-amd64"), `^linux-image-6\.12\..*\+deb12-cloud-amd64$`; got != want {
		t.Errorf("GlobRegexp = %s, want %s", got, want)
	}
}

func TestParseAptShow(t *testing.T) {
	out := `Package: linux-image-6.1.0-47-cloud-amd64-unsigned
Source: linux
Version: 6.1.170-3
Description: Linux 6.1 for x86-64 cloud
 The Linux kernel 6.1 and modules
Filename: pool/main/l/linux/linux-image-6.1.0-47-cloud-amd64-unsigned_6.1.170-3_amd64.deb
Size: 26000000
SHA256: aaaa

Package: linux-image-6.1.0-56-cloud-amd64-unsigned
Version: 6.1.192-2
SHA256: bbbb
`
	p := parseAptShow([]byte(out))
	if len(p) != 2 || p[0].Version != "6.1.170-3" || p[0].SHA256 != "aaaa" || p[0].Size != "26000000" ||
		p[1].Name != "linux-image-6.1.0-56-cloud-amd64-unsigned" || p[1].SHA256 != "bbbb" {
		t.Errorf("parseAptShow = %+v", p)
	}
}
