package kernels

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// fakeBzImage is enough of an x86 bzImage for ReleaseFromBzImage: the setup
// header magic, boot protocol 2.15 and a version string.
func fakeBzImage(version string) []byte {
	b := make([]byte, 0x1000)
	binary.LittleEndian.PutUint16(b[0x1FE:], 0xAA55)
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x206:], 0x020F)
	const at = 0x400 // where the string lives, relative to 0x200
	binary.LittleEndian.PutUint16(b[0x20E:], at)
	copy(b[0x200+at:], version+"\x00")
	return b
}

type tarFile struct {
	name, body, link string
	typ              byte
}

func tarLayer(t *testing.T, files []tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: 0o644, Size: int64(len(f.body)), Linkname: f.link, ModTime: time.Unix(0, 0)}
		switch f.typ {
		case tar.TypeDir:
			h.Mode, h.Size = 0o755, 0
		case tar.TypeSymlink, tar.TypeLink:
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if f.typ == tar.TypeReg {
			if _, err := io.WriteString(tw, f.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeLayout makes an OCI image layout in dir with one image, tagged tag,
// whose single layer holds files.
func writeLayout(t *testing.T, dir, tag string, files []tarFile) {
	t.Helper()
	b := tarLayer(t, files)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{refNameAnnotation: tag})); err != nil {
		t.Fatal(err)
	}
}

var testKernelFiles = []tarFile{
	{name: "boot/", typ: tar.TypeDir},
	{name: "boot/vmlinuz", typ: tar.TypeReg, body: string(fakeBzImage("6.6.0-test (lab@cnilab) #1 SMP"))},
	{name: "lib/", typ: tar.TypeDir},
	{name: "lib/modules/", typ: tar.TypeDir},
	{name: "lib/modules/6.6.0-test/", typ: tar.TypeDir},
	{name: "lib/modules/6.6.0-test/kernel/", typ: tar.TypeDir},
	{name: "lib/modules/6.6.0-test/kernel/x.ko", typ: tar.TypeReg, body: "\x7fELF fake module"},
	{name: "lib/modules/6.6.0-test/kernel/y.ko.zst", typ: tar.TypeReg, body: "zstd fake module"},
	{name: "lib/modules/6.6.0-test/kernel/z.ko", typ: tar.TypeLink, link: "lib/modules/6.6.0-test/kernel/x.ko"},
	{name: "lib/modules/6.6.0-test/build", typ: tar.TypeSymlink, link: "/usr/src/linux-6.6.0-test"},
	{name: "etc/passwd", typ: tar.TypeReg, body: "not part of a kernel"},
}

func TestFetchOCILayout(t *testing.T) {
	oci := t.TempDir()
	writeLayout(t, oci, "6.6", testKernelFiles)
	cache := t.TempDir()
	e := Entry{Name: "test-6.6", Source: Source{Type: TypeOCI, Image: LayoutPrefix + oci + ":6.6"}}
	ctx := context.Background()
	var log strings.Builder

	k, err := Fetch(ctx, e, cache, &log)
	if err != nil {
		t.Fatalf("Fetch: %v\n%s", err, log.String())
	}
	t.Logf("progress:\n%s", log.String())
	dir := filepath.Join(cache, "test-6.6")
	if k.Cached || k.Release != "6.6.0-test" || k.Vmlinuz != filepath.Join(dir, "boot", "vmlinuz") ||
		k.ModulesDir != filepath.Join(dir, "lib", "modules", "6.6.0-test") || k.Dir != dir ||
		!strings.HasPrefix(k.OriginDigest, "sha256:") || len(k.SHA256) != 64 || k.Source != e.Source {
		t.Fatalf("Fetch = %+v", k)
	}
	if b, err := os.ReadFile(filepath.Join(k.ModulesDir, "kernel", "z.ko")); err != nil || string(b) != "\x7fELF fake module" {
		t.Errorf("hard-linked module: %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(k.ModulesDir, "build")); err != nil || l != "/usr/src/linux-6.6.0-test" {
		t.Errorf("build symlink: %q, %v", l, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "etc")); err == nil {
		t.Error("files outside the kernel were extracted")
	}
	if formats, err := ModuleFormats(k.ModulesDir); err != nil || formats[".ko"] != 2 || formats[".ko.zst"] != 1 {
		t.Errorf("ModuleFormats = %v, %v", formats, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err != nil {
		t.Error(err)
	}

	// Second fetch: the verified cache is reused.
	log.Reset()
	k2, err := Fetch(ctx, e, cache, &log)
	if err != nil {
		t.Fatal(err)
	}
	if !k2.Cached || k2.Vmlinuz != k.Vmlinuz || k2.SHA256 != k.SHA256 || k2.OriginDigest != k.OriginDigest {
		t.Errorf("second Fetch = %+v, want the cached kernel", k2)
	}
	if c, err := CachedKernel(e, cache); err != nil || c.Release != "6.6.0-test" {
		t.Errorf("CachedKernel = %+v, %v", c, err)
	}

	// A corrupted kernel image is detected and fetched again.
	if err := os.WriteFile(k.Vmlinuz, []byte("corrupt"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CachedKernel(e, cache); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("CachedKernel of a corrupt cache: %v", err)
	}
	log.Reset()
	k3, err := Fetch(ctx, e, cache, &log)
	if err != nil {
		t.Fatal(err)
	}
	if k3.Cached || k3.SHA256 != k.SHA256 || !strings.Contains(log.String(), "cache not usable") {
		t.Errorf("Fetch after corruption = %+v\n%s", k3, log.String())
	}
	if sum, _ := fileSHA256(k3.Vmlinuz); sum != k.SHA256 {
		t.Error("refetched kernel image does not hash to the original")
	}

	// A removed module is detected too.
	if err := os.Remove(filepath.Join(k.ModulesDir, "kernel", "y.ko.zst")); err != nil {
		t.Fatal(err)
	}
	if _, err := CachedKernel(e, cache); err == nil || !strings.Contains(err.Error(), "files") {
		t.Errorf("CachedKernel with a module missing: %v", err)
	}

	// A catalog source change invalidates the cache.
	e2 := e
	e2.Source.Image = LayoutPrefix + oci
	if _, err := CachedKernel(e2, cache); err == nil || !strings.Contains(err.Error(), "catalog now says") {
		t.Errorf("CachedKernel with another source: %v", err)
	}
	// No temporary directories are left behind.
	ents, _ := os.ReadDir(cache)
	for _, d := range ents {
		if strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("left behind %s", d.Name())
		}
	}
}

func TestFetchOCILayoutCorruptBlob(t *testing.T) {
	oci := t.TempDir()
	writeLayout(t, oci, "6.6", testKernelFiles)
	// Flip a byte in the layer blob (the largest blob).
	blobs, _ := filepath.Glob(filepath.Join(oci, "blobs", "sha256", "*"))
	var biggest string
	var size int64
	for _, b := range blobs {
		if st, _ := os.Stat(b); st.Size() > size {
			biggest, size = b, st.Size()
		}
	}
	b, _ := os.ReadFile(biggest)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(biggest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e := Entry{Name: "corrupt", Source: Source{Type: TypeOCI, Image: LayoutPrefix + oci}}
	cache := t.TempDir()
	_, err := Fetch(context.Background(), e, cache, nil)
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Fetch of a corrupt layout: %v", err)
	}
	t.Log(err)
	if _, err := os.Stat(filepath.Join(cache, "corrupt")); err == nil {
		t.Error("a failed fetch left a cache directory")
	}
}

func TestFetchOCILayoutErrors(t *testing.T) {
	oci := t.TempDir()
	writeLayout(t, oci, "6.6", testKernelFiles)
	noModules := t.TempDir()
	writeLayout(t, noModules, "x", []tarFile{{name: "lib/modules/a/", typ: tar.TypeDir}, {name: "lib/modules/b/", typ: tar.TypeDir}})
	escape := t.TempDir()
	writeLayout(t, escape, "x", []tarFile{
		{name: "boot/vmlinuz", typ: tar.TypeReg, body: "kernel"},
		{name: "lib/modules", typ: tar.TypeSymlink, link: "/etc"},
		{name: "lib/modules/6.6/x.ko", typ: tar.TypeReg, body: "x"},
	})
	for _, c := range []struct{ image, want string }{
		{LayoutPrefix + oci + ":6.1", `no image tagged "6.1" (tags: 6.6)`},
		{LayoutPrefix + filepath.Join(oci, "missing"), "reading OCI image layout"},
		{LayoutPrefix + noModules, "no /boot/vmlinuz"},
		{LayoutPrefix + escape, "lib/modules is a symlink"},
	} {
		e := Entry{Name: "bad", Source: Source{Type: TypeOCI, Image: c.image}}
		_, err := Fetch(context.Background(), e, t.TempDir(), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Fetch(%s): %v, want an error with %q", c.image, err, c.want)
		}
	}
}

func TestFetchOCIRegistryUnreachable(t *testing.T) {
	// Nothing listens on port 1 of the loopback address.
	e := Entry{Name: "unreachable", Source: Source{Type: TypeOCI, Image: "127.0.0.1:1/cilium/ci-kernels:6.6"}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Fetch(ctx, e, t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "registry 127.0.0.1:1 is not reachable") || !strings.Contains(err.Error(), "oci-layout:") {
		t.Fatalf("Fetch from an unreachable registry: %v", err)
	}
	t.Log(err)
}
