package images

import (
	"archive/tar"
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entriesOf resolves a spec and returns its entries by path.
func entriesOf(t *testing.T, s Spec) map[string]*entry {
	t.Helper()
	entries, err := resolve(s)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*entry{}
	for _, e := range entries {
		out[e.path] = e
	}
	return out
}

// TestHostPaths copies host paths as the kernel resolves them: every link on
// the way is in the image, with its target as written.
func TestHostPaths(t *testing.T) {
	tmp, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(p, content string, mode os.FileMode) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	mk(filepath.Join(tmp, "usr/lib/libx.so.1.2"), "lib", 0o600)
	mk(filepath.Join(tmp, "usr/sbin/tool"), "tool", 0o750)
	mk(filepath.Join(tmp, "usr/lib/plugins/a.so"), "a", 0o644)
	link("usr/lib", filepath.Join(tmp, "lib"))
	link("libx.so.1.2", filepath.Join(tmp, "usr/lib/libx.so.1"))
	link("a.so", filepath.Join(tmp, "usr/lib/plugins/b.so"))
	link(filepath.Join(tmp, "usr/sbin/tool"), filepath.Join(tmp, "usr/sbin/alias")) // absolute

	got := entriesOf(t, Spec{Name: "t", Reference: "example.com/t:1", Host: []HostPath{
		{Path: filepath.Join(tmp, "lib/libx.so.1")},
		{Path: filepath.Join(tmp, "usr/sbin/alias")},
		{Path: filepath.Join(tmp, "lib/plugins")},
		{Path: filepath.Join(tmp, "absent"), Optional: true},
	}})
	want := map[string]struct {
		typ  byte
		mode int64
		link string
	}{
		"lib":                  {tar.TypeSymlink, 0o777, "usr/lib"},
		"usr/lib/libx.so.1":    {tar.TypeSymlink, 0o777, "libx.so.1.2"},
		"usr/lib/libx.so.1.2":  {tar.TypeReg, 0o644, ""},
		"usr/sbin/alias":       {tar.TypeSymlink, 0o777, filepath.Join(tmp, "usr/sbin/tool")},
		"usr/sbin/tool":        {tar.TypeReg, 0o755, ""},
		"usr/lib/plugins":      {tar.TypeDir, 0o755, ""},
		"usr/lib/plugins/a.so": {tar.TypeReg, 0o644, ""},
		"usr/lib/plugins/b.so": {tar.TypeSymlink, 0o777, "a.so"},
		"usr":                  {tar.TypeDir, 0o755, ""}, // parents are there
	}
	for rel, w := range want {
		p := filepath.Join(tmp, rel)
		e, ok := got[p]
		if !ok || e.typ != w.typ || e.mode != w.mode || e.link != w.link {
			t.Errorf("%s: %+v; want type %c mode %o link %q", p, e, w.typ, w.mode, w.link)
		}
	}
	if _, ok := got[filepath.Join(tmp, "absent")]; ok {
		t.Error("an absent optional path is in the image")
	}

	_, err = resolve(Spec{Name: "t", Reference: "example.com/t:1", Host: []HostPath{{Path: filepath.Join(tmp, "absent"), Package: "pkg"}}})
	if err == nil || !strings.Contains(err.Error(), "apt-get install pkg") {
		t.Errorf("absent host path: %v; want the package to install", err)
	}
}

// TestConflicts: one path, two different files.
func TestConflicts(t *testing.T) {
	s := Spec{Name: "t", Reference: "example.com/t:1", Files: []File{
		{Path: "/etc/a", Data: []byte("1")}, {Path: "/etc/a", Data: []byte("2")}}}
	if _, err := resolve(s); err == nil || !strings.Contains(err.Error(), "/etc/a") {
		t.Errorf("two contents for /etc/a: %v", err)
	}
	s.Files = []File{{Path: "/bin", Link: "usr/bin"}, {Path: "/bin/sh", Data: []byte("x")}}
	if _, err := resolve(s); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file below a link: %v", err)
	}
	s.Files = []File{{Path: "etc/a", Data: []byte("1")}}
	if _, err := resolve(s); err == nil {
		t.Error("a relative path was taken")
	}
}

// TestLibraries resolves a dynamically linked program of this machine: the
// image gets its interpreter and its libraries where the loader finds them.
func TestLibraries(t *testing.T) {
	const sh = "/bin/sh"
	f, err := elf.Open(sh)
	if err != nil {
		t.Skipf("%s: %v", sh, err)
	}
	interp := interpreter(f)
	needed, _ := f.ImportedLibraries()
	f.Close()
	if interp == "" || len(needed) == 0 {
		t.Skipf("%s is not dynamically linked", sh)
	}
	got := entriesOf(t, Spec{Name: "t", Reference: "example.com/t:1", Host: []HostPath{{Path: sh}}})
	// Every needed library and the interpreter resolve, through the image's
	// own links, to a regular file of the image.
	for _, p := range append([]string{interp}, libraryPaths(t, needed)...) {
		if e := lookup(got, p); e == nil || e.typ != tar.TypeReg || !strings.HasPrefix(string(e.data), elf.ELFMAG) {
			t.Errorf("%s does not resolve to an ELF file in the image", p)
		}
	}
}

// libraryPaths is where the loader finds each library on this machine.
func libraryPaths(t *testing.T, libs []string) []string {
	var out []string
	for _, lib := range libs {
		for _, d := range systemLibDirs {
			if _, err := os.Stat(filepath.Join(d, lib)); err == nil {
				out = append(out, filepath.Join(d, lib))
				break
			}
		}
	}
	if len(out) != len(libs) {
		t.Fatalf("libraries %v: found %v", libs, out)
	}
	return out
}

// lookup resolves p among the entries, following their links.
func lookup(entries map[string]*entry, p string) *entry {
	rest := splitPath(p)
	cur := "/"
	for hops := 0; len(rest) > 0 && hops < maxLinks; {
		cur = filepath.Join(cur, rest[0])
		rest = rest[1:]
		e, ok := entries[cur]
		if !ok {
			return nil
		}
		if e.typ == tar.TypeSymlink {
			hops++
			if filepath.IsAbs(e.link) {
				rest, cur = append(splitPath(e.link), rest...), "/"
			} else {
				rest, cur = append(splitPath(e.link), rest...), filepath.Dir(cur)
			}
		}
	}
	return entries[cur]
}
