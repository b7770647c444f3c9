package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// fakeDirs makes _output-like directories holding the named fake binaries.
func fakeDirs(t *testing.T, bins ...string) Dirs {
	t.Helper()
	out := t.TempDir()
	d := Dirs{Bin: filepath.Join(out, "bin"), Tools: filepath.Join(out, "tools", "bin"), CNIBin: filepath.Join(out, "tools", "cni", "bin")}
	for _, b := range bins {
		p := filepath.Join(out, filepath.FromSlash(b))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		// Mode 0700: the image says 0755 whatever the build left.
		if err := os.WriteFile(p, []byte("fake "+b), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// layerFile is a layer member as read back.
type layerFile struct {
	typ      byte
	mode     int64
	uid, gid int
	link     string
	data     string
	hdr      *tar.Header
}

// readImage loads NAME.tar of dir as ref and returns the image and its
// layer's members by path (without the leading /).
func readImage(t *testing.T, dir, image, ref string) (v1.Image, map[string]layerFile) {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(filepath.Join(dir, image+".tar"), &tag)
	if err != nil {
		t.Fatalf("read %s as %s: %v", image, ref, err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]layerFile{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return img, files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[hdr.Name] = layerFile{hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Gid, hdr.Linkname, string(data), hdr}
	}
}

func TestBuild(t *testing.T) {
	d := fakeDirs(t, "bin/cnilab-agent", "bin/cnilab-cni")
	out := filepath.Join(t.TempDir(), "images")
	var progress bytes.Buffer
	o := Options{Dirs: d, Output: out, Only: []string{"cnilab"}, Progress: &progress}
	recs, err := Build(context.Background(), o)
	if err != nil || len(recs) != 1 {
		t.Fatalf("build: %v %v\n%s", recs, err, progress.String())
	}
	rec := recs[0]
	if rec.Reference != "docker.io/cnilab/cnilab:dev" || rec.Tarball != "cnilab.tar" || !strings.HasPrefix(rec.Digest, "sha256:") {
		t.Fatalf("record %+v", rec)
	}

	// The tarball names the image as the manifests do, in containerd's
	// fully qualified form.
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(filepath.Join(out, "cnilab.tar")) })
	if err != nil || len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{"docker.io/cnilab/cnilab:dev"}) {
		t.Fatalf("manifest.json: %+v, %v", m, err)
	}
	img, files := readImage(t, out, "cnilab", "cnilab/cnilab:dev")
	checkConfig(t, img, []string{"/usr/local/bin/cnilab-agent"}, "0:0")
	if digest, _ := img.Digest(); digest.String() != rec.Digest {
		t.Errorf("digest %s, images.json says %s", digest, rec.Digest)
	}
	want := map[string]layerFile{
		"usr/":                       {typ: tar.TypeDir, mode: 0o755},
		"usr/local/":                 {typ: tar.TypeDir, mode: 0o755},
		"usr/local/bin/":             {typ: tar.TypeDir, mode: 0o755},
		"usr/local/bin/cnilab-agent": {typ: tar.TypeReg, mode: 0o755, data: "fake bin/cnilab-agent"},
		"usr/local/bin/cnilab-cni":   {typ: tar.TypeReg, mode: 0o755, data: "fake bin/cnilab-cni"},
	}
	checkFiles(t, files, want)

	// Unchanged inputs: nothing rebuilt. Forced: the same digest.
	progress.Reset()
	again, err := Build(context.Background(), o)
	if err != nil || again[0].Digest != rec.Digest || !strings.Contains(progress.String(), "cnilab: up to date") {
		t.Fatalf("second build: %v %v\n%s", again, err, progress.String())
	}
	o.Force = true
	if forced, err := Build(context.Background(), o); err != nil || forced[0].Digest != rec.Digest {
		t.Fatalf("forced build: %v %v: want the same digest %s", forced, err, rec.Digest)
	}

	// A changed input is rebuilt.
	o.Force = false
	if err := os.WriteFile(filepath.Join(d.Bin, "cnilab-cni"), []byte("new"), 0o755); err != nil {
		t.Fatal(err)
	}
	progress.Reset()
	changed, err := Build(context.Background(), o)
	if err != nil || changed[0].Digest == rec.Digest || !strings.Contains(progress.String(), "cnilab: wrote") {
		t.Fatalf("build after a change: %v %v\n%s", changed, err, progress.String())
	}
	index, err := readIndex(out)
	if err != nil || index["cnilab"].Digest != changed[0].Digest || len(index["cnilab"].Files) != 5 {
		t.Fatalf("images.json: %+v, %v", index, err)
	}
}

func checkConfig(t *testing.T, img v1.Image, entrypoint []string, user string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != "linux" || cf.Architecture != "amd64" || !slices.Equal(c.Entrypoint, entrypoint) || c.User != user ||
		!slices.Contains(c.Env, "PATH="+DefaultPath) || !cf.Created.Time.Equal(epoch) {
		t.Errorf("config %s/%s created %v: %+v; want entrypoint %v, user %s, PATH", cf.OS, cf.Architecture, cf.Created, c, entrypoint, user)
	}
}

// checkFiles compares a layer with want: type, mode, content, owner 0:0
// and the fixed time.
func checkFiles(t *testing.T, got, want map[string]layerFile) {
	t.Helper()
	for p, f := range got {
		w, ok := want[p]
		if !ok {
			t.Errorf("unexpected %s in the layer", p)
			continue
		}
		if f.typ != w.typ || f.mode != w.mode || f.link != w.link || f.data != w.data || f.uid != 0 || f.gid != 0 || !f.hdr.ModTime.Equal(epoch) {
			t.Errorf("%s: type %c mode %o owner %d:%d link %q time %v content %q; want type %c mode %o owner 0:0 link %q time %v content %q",
				p, f.typ, f.mode, f.uid, f.gid, f.link, f.hdr.ModTime, f.data, w.typ, w.mode, w.link, epoch, w.data)
		}
	}
	for p := range want {
		if _, ok := got[p]; !ok {
			t.Errorf("%s missing from the layer", p)
		}
	}
}

func TestMissingInput(t *testing.T) {
	d := fakeDirs(t, "bin/cnilab-probe")
	out := t.TempDir()
	var progress bytes.Buffer
	recs, err := Build(context.Background(), Options{Dirs: d, Output: out, Only: []string{"coredns", "cnilab-probe"}, Progress: &progress})
	var missing *MissingInputError
	if !errors.As(err, &missing) || missing.Image != "coredns" || missing.Path != filepath.Join(d.Tools, "coredns") {
		t.Fatalf("error %v; want coredns's missing input", err)
	}
	for _, s := range []string{filepath.Join(d.Tools, "coredns"), "make tools"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
	// The other image is built all the same.
	if len(recs) != 1 || recs[0].Name != "cnilab-probe" {
		t.Fatalf("built %+v; want cnilab-probe\n%s", recs, progress.String())
	}
	if _, err := os.Stat(filepath.Join(out, "coredns.tar")); !os.IsNotExist(err) {
		t.Errorf("coredns.tar: %v; want none", err)
	}
	if _, err := Build(context.Background(), Options{Dirs: d, Output: out, Only: []string{"nginx"}}); err == nil || !strings.Contains(err.Error(), "cnilab-probe") {
		t.Errorf("unknown image: %v; want an error listing the images", err)
	}
}

// TestUpstreamImages builds the stand-ins of upstream images from fake
// binaries: names, entrypoints, users, and what the layer must hold beside
// the binary.
func TestUpstreamImages(t *testing.T) {
	d := fakeDirs(t, "bin/cnilab-pause", "tools/bin/agnhost", "tools/bin/coredns")
	out := t.TempDir()
	if _, err := Build(context.Background(), Options{Dirs: d, Output: out, Only: []string{"pause", "agnhost", "coredns"}}); err != nil {
		t.Fatal(err)
	}
	img, files := readImage(t, out, "pause", PauseImage)
	checkConfig(t, img, []string{"/pause"}, "65535:65535")
	checkFiles(t, files, map[string]layerFile{"pause": {typ: tar.TypeReg, mode: 0o755, data: "fake bin/cnilab-pause"}})

	img, files = readImage(t, out, "coredns", CoreDNSImage)
	checkConfig(t, img, []string{"/coredns"}, "65532:65532")
	if c := files["coredns"].hdr.PAXRecords["SCHILY.xattr.security.capability"]; c != "\x01\x00\x00\x02\x00\x04\x00\x00"+strings.Repeat("\x00", 12) {
		t.Errorf("coredns capability %q; want cap_net_bind_service=+ep", c)
	}

	img, files = readImage(t, out, "agnhost", AgnhostImage)
	checkConfig(t, img, []string{"/agnhost"}, "0:0")
	if f := files["agnhost-2"]; f.typ != tar.TypeSymlink || f.link != "agnhost" {
		t.Errorf("agnhost-2: %+v; want a link to agnhost", f)
	}
	if f := files["tmp/"]; f.mode != 0o1777 {
		t.Errorf("/tmp mode %o; want 1777", f.mode)
	}
	for _, p := range []string{"agnhost", "uploads/", "etc/passwd", "etc/group"} {
		if _, ok := files[p]; !ok {
			t.Errorf("agnhost image without /%s", p)
		}
	}
}
