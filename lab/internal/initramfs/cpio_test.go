package initramfs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// record is one parsed newc record.
type record struct {
	ino, mode, uid, gid, nlink, mtime uint32
	rmaj, rmin                        uint32
	name                              string
	data                              []byte
}

// readNewc parses a newc archive written by this package, strictly: magic,
// alignment, NUL-terminated names, and a trailer at the end.
func readNewc(t *testing.T, b []byte) []record {
	t.Helper()
	var out []record
	off := 0
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+headerLen > len(b) {
			t.Fatalf("truncated header at offset %d", off)
		}
		h := b[off : off+headerLen]
		if string(h[:6]) != newcMagic {
			t.Fatalf("bad magic %q at offset %d", h[:6], off)
		}
		var f [13]uint32
		for i := range f {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("field %d at offset %d: %v", i, off, err)
			}
			f[i] = uint32(v)
		}
		namesize := int(f[11])
		nameEnd := off + headerLen + namesize
		if namesize == 0 || nameEnd > len(b) || b[nameEnd-1] != 0 {
			t.Fatalf("bad name at offset %d", off)
		}
		r := record{ino: f[0], mode: f[1], uid: f[2], gid: f[3], nlink: f[4], mtime: f[5], rmaj: f[9], rmin: f[10],
			name: string(b[off+headerLen : nameEnd-1])}
		if f[12] != 0 {
			t.Errorf("%s: check field %d, want 0", r.name, f[12])
		}
		for _, pad := range b[nameEnd:align(nameEnd)] {
			if pad != 0 {
				t.Fatalf("%s: non-NUL name padding", r.name)
			}
		}
		off = align(nameEnd)
		size := int(f[6])
		if off+size > len(b) {
			t.Fatalf("%s: truncated data", r.name)
		}
		r.data = b[off : off+size]
		off = align(off + size)
		if r.name == trailerName {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, r)
	}
}

func testFiles(t *testing.T) []File {
	dir := t.TempDir()
	src := filepath.Join(dir, "tool")
	if err := os.WriteFile(src, []byte("#!tool\x00binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("text"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []File{
		{Path: "/usr/bin/nsenter", Kind: KindSymlink, Target: "/init"},
		{Path: "/init", Kind: KindFile, Source: src},
		{Path: "etc/cnilab/modules", Kind: KindFile, Data: []byte("a\nb\n")},
		{Path: "/etc/plain", Kind: KindFile, Source: plain},
		{Path: "/tmp", Kind: KindDir, Mode: 0o777 | os.ModeSticky},
		{Path: "/root", Kind: KindDir, Mode: 0o700},
		{Path: "/dev/console", Kind: KindCharDev, Major: 5, Minor: 1},
		{Path: "/empty", Kind: KindFile, Data: nil},
		{Path: "/a-b/x", Kind: KindFile, Data: []byte("1")},
		{Path: "/a/b/c/d", Kind: KindFile, Data: []byte("12345")},
	}
}

func TestWriteArchiveRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteArchive(&buf, testFiles(t)); err != nil {
		t.Fatal(err)
	}
	recs := readNewc(t, buf.Bytes())
	type want struct {
		mode  uint32
		data  string
		nlink uint32
	}
	wants := map[string]want{
		"a":                  {0o040755, "", 2},
		"a/b":                {0o040755, "", 2},
		"a/b/c":              {0o040755, "", 2},
		"a/b/c/d":            {0o100644, "12345", 1},
		"a-b":                {0o040755, "", 2},
		"a-b/x":              {0o100644, "1", 1},
		"dev":                {0o040755, "", 2},
		"dev/console":        {0o020600, "", 1},
		"empty":              {0o100644, "", 1},
		"etc":                {0o040755, "", 2},
		"etc/cnilab":         {0o040755, "", 2},
		"etc/cnilab/modules": {0o100644, "a\nb\n", 1},
		"etc/plain":          {0o100644, "text", 1},
		"init":               {0o100755, "#!tool\x00binary", 1},
		"root":               {0o040700, "", 2},
		"tmp":                {0o041777, "", 2},
		"usr":                {0o040755, "", 2},
		"usr/bin":            {0o040755, "", 2},
		"usr/bin/nsenter":    {0o120777, "/init", 1},
	}
	if len(recs) != len(wants) {
		var names []string
		for _, r := range recs {
			names = append(names, r.name)
		}
		t.Fatalf("got %d records %q, want %d", len(recs), names, len(wants))
	}
	seen := map[string]bool{}
	for i, r := range recs {
		w, ok := wants[r.name]
		if !ok {
			t.Errorf("unexpected record %q", r.name)
			continue
		}
		if r.mode != w.mode || string(r.data) != w.data || r.nlink != w.nlink {
			t.Errorf("%s: mode %o data %q nlink %d, want %o %q %d", r.name, r.mode, r.data, r.nlink, w.mode, w.data, w.nlink)
		}
		if r.ino != uint32(i+1) || r.uid != 0 || r.gid != 0 || r.mtime != 0 {
			t.Errorf("%s: ino %d uid %d gid %d mtime %d, want ino %d and zeros", r.name, r.ino, r.uid, r.gid, r.mtime, i+1)
		}
		if i > 0 && recs[i-1].name >= r.name {
			t.Errorf("records not sorted: %q before %q", recs[i-1].name, r.name)
		}
		if d := filepath.Dir(r.name); d != "." && !seen[d] {
			t.Errorf("%s comes before its parent %s", r.name, d)
		}
		if r.name == "dev/console" && (r.rmaj != 5 || r.rmin != 1) {
			t.Errorf("dev/console is %d:%d, want 5:1", r.rmaj, r.rmin)
		}
		seen[r.name] = true
	}
}

// TestCpioTool lists our archive with GNU cpio, an independent reader.
func TestCpioTool(t *testing.T) {
	tool, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("cpio is not installed; the round trip through our own reader covers the format")
	}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, testFiles(t)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool, "-t", "--quiet")
	cmd.Stdin = &buf
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	if len(got) != 19 || got[0] != "a" || got[len(got)-1] != "usr/bin/nsenter" {
		t.Fatalf("cpio -t listed %q", got)
	}
}

func TestWriteArchiveErrors(t *testing.T) {
	for name, files := range map[string][]File{
		"duplicate":       {{Path: "/x", Data: []byte("1")}, {Path: "x", Data: []byte("2")}},
		"file as parent":  {{Path: "/x", Data: []byte("1")}, {Path: "/x/y", Data: []byte("2")}},
		"empty target":    {{Path: "/l", Kind: KindSymlink}},
		"root":            {{Path: "/", Kind: KindDir}},
		"empty path":      {{Path: "", Data: []byte("1")}},
		"missing source":  {{Path: "/x", Source: "/nonexistent/cnilab-test"}},
		"source and data": {{Path: "/x", Source: "/etc/hostname", Data: []byte("1")}},
		"dir mode clash":  {{Path: "/d", Kind: KindDir, Mode: 0o700}, {Path: "/d", Kind: KindDir, Mode: 0o755}},
		"unknown kind":    {{Path: "/x", Kind: Kind(42)}},
	} {
		if err := WriteArchive(io.Discard, files); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// "..": cleaned to stay inside the root, not an error.
	var buf bytes.Buffer
	if err := WriteArchive(&buf, []File{{Path: "/../../x", Data: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	if recs := readNewc(t, buf.Bytes()); len(recs) != 1 || recs[0].name != "x" {
		t.Fatalf("got %+v", recs)
	}
}

func TestBuildDeterministicAndCached(t *testing.T) {
	files := testFiles(t)
	d1, d2 := t.TempDir(), t.TempDir()
	p1, err := Build(Spec{Files: files, CacheDir: d1})
	if err != nil {
		t.Fatal(err)
	}
	// Same content in another order, into another cache: same bytes.
	rev := append([]File(nil), files...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	p2, err := Build(Spec{Files: rev, CacheDir: d2})
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(p1)
	b2, _ := os.ReadFile(p2)
	if filepath.Base(p1) != filepath.Base(p2) || !bytes.Equal(b1, b2) || len(b1) == 0 {
		t.Fatalf("not reproducible: %s (%d bytes) vs %s (%d bytes)", p1, len(b1), p2, len(b2))
	}
	if len(b1)%4 != 0 {
		t.Errorf("archive size %d is not a multiple of 4", len(b1))
	}

	// Same spec again: the cached archive is returned, not rewritten.
	if err := os.WriteFile(p1, []byte("sentinel"), 0o644); err != nil {
		t.Fatal(err)
	}
	p3, err := Build(Spec{Files: files, CacheDir: d1})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p3); p3 != p1 || string(b) != "sentinel" {
		t.Fatalf("cached archive not reused: %s", p3)
	}

	// Another content or mode: another key.
	keys := map[string]string{}
	variants := map[string]func([]File) []File{
		"base": func(f []File) []File { return f },
		"data": func(f []File) []File { f[2].Data = []byte("a\nc\n"); return f },
		"mode": func(f []File) []File { f[2].Mode = 0o600; return f },
		"path": func(f []File) []File { f[2].Path = "/etc/cnilab/modules2"; return f },
		"link": func(f []File) []File { f[0].Target = "/init2"; return f },
		"src": func(f []File) []File {
			if err := os.WriteFile(f[1].Source, []byte("#!tool\x00binarz"), 0o755); err != nil {
				t.Fatal(err)
			}
			return f
		},
	}
	for _, name := range []string{"base", "data", "mode", "path", "link", "src"} {
		k, err := Key(variants[name](append([]File(nil), files...)))
		if err != nil {
			t.Fatal(err)
		}
		for other, ok := range keys {
			if ok == k {
				t.Errorf("variants %s and %s have the same key", name, other)
			}
		}
		keys[name] = k
	}
	if n := len(entriesIn(t, d1)); n != 1 {
		t.Errorf("cache dir holds %d files, want 1 (temporary files left?)", n)
	}
}

func entriesIn(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	return names
}

func TestBuildDetectsChangedSource(t *testing.T) {
	// A file that changes between hashing and writing must not produce an
	// archive cached under the old content's key. Simulate it by hashing,
	// then changing the file before write.
	dir := t.TempDir()
	src := filepath.Join(dir, "f")
	if err := os.WriteFile(src, []byte("aaaa"), 0o644); err != nil {
		t.Fatal(err)
	}
	entries, err := normalize([]File{{Path: "/f", Source: src}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := key(entries); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, []byte("bbbb"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := write(io.Discard, entries); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("write after change: %v, want a 'changed' error", err)
	}
}

func ExampleWriteArchive() {
	var buf bytes.Buffer
	_ = WriteArchive(&buf, []File{{Path: "/etc/hostname", Data: []byte("node\n")}})
	fmt.Println(buf.Len(), buf.String()[:6])
	// Output: 372 070701
}
