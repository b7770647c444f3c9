package kernels

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Platform is the platform picked from multi-platform OCI images: the lab
// boots x86-64 kernels.
var Platform = v1.Platform{OS: "linux", Architecture: "amd64"}

// refNameAnnotation tags a manifest in an OCI image layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// fetchOCI reads the entry's image from a local OCI layout or a registry,
// checks manifest, config and layers against their digests and extracts
// /boot/vmlinuz and /lib/modules/** of the flattened image into dir.
func fetchOCI(ctx context.Context, e Entry, dir string, progress io.Writer) (manifest, error) {
	ref := e.Source.Image
	var (
		img  v1.Image
		want v1.Hash
		err  error
	)
	download := filepath.Join(dir, ".oci-download")
	if p, tag, ok := parseLayoutRef(ref); ok {
		fmt.Fprintf(progress, "%s: reading OCI image layout %s\n", e.Name, p)
		img, want, err = layoutImage(p, tag)
	} else {
		fmt.Fprintf(progress, "%s: pulling %s (%s/%s)\n", e.Name, ref, Platform.OS, Platform.Architecture)
		img, want, err = pullImage(ctx, ref, download)
	}
	if err != nil {
		return manifest{}, err
	}
	n, size, err := verifyImage(img, want)
	if err != nil {
		return manifest{}, fmt.Errorf("image %s: %w", ref, err)
	}
	fmt.Fprintf(progress, "%s: image %s verified (%d layers, %d bytes); extracting /boot/vmlinuz and /lib/modules\n", e.Name, want, n, size)
	if err := extractKernel(img, dir); err != nil {
		return manifest{}, fmt.Errorf("image %s: %w", ref, err)
	}
	if err := os.RemoveAll(download); err != nil {
		return manifest{}, err
	}
	vmlinuz := filepath.Join("boot", "vmlinuz")
	if !isRegular(filepath.Join(dir, vmlinuz)) {
		return manifest{}, fmt.Errorf("image %s has no /boot/vmlinuz file", ref)
	}
	release, modules, err := findRelease(dir, true)
	if err != nil {
		return manifest{}, fmt.Errorf("image %s: %w", ref, err)
	}
	if release == "" {
		if release, err = ReleaseFromBzImage(filepath.Join(dir, vmlinuz)); err != nil {
			return manifest{}, fmt.Errorf("image %s has no /lib/modules/<release> and its kernel image names no release: %w", ref, err)
		}
	}
	return manifest{Release: release, Vmlinuz: vmlinuz, Modules: modules, Origin: ref, ImageDigest: want.String()}, nil
}

// layoutImage opens the image tagged tag (any single image when tag is "")
// in the OCI image layout at dir. A tag matches the ref.name annotation
// either whole or as the part after the last ':'.
func layoutImage(dir, tag string) (v1.Image, v1.Hash, error) {
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("reading OCI image layout %s: %w", dir, err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("reading OCI image layout %s: %w", dir, err)
	}
	var found []v1.Descriptor
	var tags []string
	for _, d := range im.Manifests {
		rn := d.Annotations[refNameAnnotation]
		if rn != "" {
			tags = append(tags, rn)
		}
		if tag == "" || rn == tag || strings.HasSuffix(rn, ":"+tag) {
			found = append(found, d)
		}
	}
	sort.Strings(tags)
	switch {
	case len(found) == 0 && tag == "":
		return nil, v1.Hash{}, fmt.Errorf("OCI image layout %s holds no image", dir)
	case len(found) == 0:
		return nil, v1.Hash{}, fmt.Errorf("OCI image layout %s has no image tagged %q (tags: %s)", dir, tag, strings.Join(tags, ", "))
	case len(found) > 1:
		return nil, v1.Hash{}, fmt.Errorf("OCI image layout %s holds %d images matching %q; name one with oci-layout:%s:TAG (tags: %s)", dir, len(found), tag, dir, strings.Join(tags, ", "))
	}
	return resolveDescriptor(ii, found[0])
}

// resolveDescriptor opens the image a layout descriptor names, descending
// into image indexes (checked against their digests) to the Platform image.
func resolveDescriptor(ii v1.ImageIndex, d v1.Descriptor) (v1.Image, v1.Hash, error) {
	switch {
	case d.MediaType.IsImage():
		img, err := ii.Image(d.Digest)
		return img, d.Digest, err
	case d.MediaType.IsIndex():
		child, err := ii.ImageIndex(d.Digest)
		if err != nil {
			return nil, v1.Hash{}, err
		}
		raw, err := child.RawManifest()
		if err != nil {
			return nil, v1.Hash{}, err
		}
		if err := checkDigest("image index", d.Digest, raw); err != nil {
			return nil, v1.Hash{}, err
		}
		im, err := child.IndexManifest()
		if err != nil {
			return nil, v1.Hash{}, err
		}
		var pick []v1.Descriptor
		for _, c := range im.Manifests {
			if c.Platform != nil && c.Platform.OS == Platform.OS && c.Platform.Architecture == Platform.Architecture {
				pick = append(pick, c)
			}
		}
		if len(pick) == 0 && len(im.Manifests) == 1 && im.Manifests[0].Platform == nil {
			pick = im.Manifests
		}
		if len(pick) == 0 {
			return nil, v1.Hash{}, fmt.Errorf("image index %s has no %s/%s image", d.Digest, Platform.OS, Platform.Architecture)
		}
		return resolveDescriptor(child, pick[0])
	}
	return nil, v1.Hash{}, fmt.Errorf("descriptor %s has media type %q, neither an image nor an index", d.Digest, d.MediaType)
}

// pullImage resolves ref on its registry and downloads the Platform image into
// a temporary OCI layout (go-containerregistry checks each blob's digest as
// it reads it), which it returns.
func pullImage(ctx context.Context, ref, dir string) (v1.Image, v1.Hash, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	// Anonymous access: the catalog's images are public.
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithPlatform(Platform))
	if err != nil {
		return nil, v1.Hash{}, registryError(ctx, r, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, v1.Hash{}, registryError(ctx, r, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	if err := p.AppendImage(img); err != nil {
		return nil, v1.Hash{}, registryError(ctx, r, err)
	}
	li, err := p.Image(d)
	return li, d, err
}

// registryError says plainly when a registry cannot be reached at all, and
// what to do instead.
func registryError(ctx context.Context, r name.Reference, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	reg := r.Context().RegistryStr()
	var (
		dnsErr *net.DNSError
		opErr  *net.OpError
		urlErr *url.Error
		trErr  *transport.Error
	)
	switch {
	case errors.As(err, &dnsErr), errors.As(err, &opErr), errors.As(err, &urlErr) && urlErr.Timeout():
		return fmt.Errorf("registry %s is not reachable from this machine (%v): pulling %s needs network access to it. "+
			"Without it, copy the image into an OCI image layout where the registry is reachable "+
			"(crane pull --format=oci %s DIR, or skopeo copy docker://%s oci:DIR:TAG), bring DIR here and use the image oci-layout:DIR[:TAG], "+
			"or use a debian or local kernel", reg, err, r, r, r)
	case errors.As(err, &trErr):
		return fmt.Errorf("registry %s refused %s: %w", reg, r, err)
	}
	return fmt.Errorf("pulling %s: %w", r, err)
}

// verifyImage checks the image's manifest against want and its config and
// every layer blob against the digests and sizes the manifest gives; it
// returns the number of layers and their total compressed size.
func verifyImage(img v1.Image, want v1.Hash) (layers int, size int64, err error) {
	raw, err := img.RawManifest()
	if err != nil {
		return 0, 0, err
	}
	if err := checkDigest("manifest", want, raw); err != nil {
		return 0, 0, err
	}
	m, err := img.Manifest()
	if err != nil {
		return 0, 0, err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return 0, 0, err
	}
	if err := checkDigest("config", m.Config.Digest, cfg); err != nil {
		return 0, 0, err
	}
	for _, d := range m.Layers {
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return 0, 0, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return 0, 0, fmt.Errorf("layer %s: %w", d.Digest, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("layer %s: %w", d.Digest, err)
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); d.Digest.Algorithm != "sha256" || got != d.Digest.String() {
			return 0, 0, fmt.Errorf("layer %s is corrupt: its content hashes to %s", d.Digest, got)
		}
		if d.Size > 0 && n != d.Size {
			return 0, 0, fmt.Errorf("layer %s is %d bytes, the manifest says %d", d.Digest, n, d.Size)
		}
		size += n
	}
	return len(m.Layers), size, nil
}

func checkDigest(what string, want v1.Hash, b []byte) error {
	if want.Algorithm != "sha256" {
		return fmt.Errorf("%s digest %s: only sha256 digests are supported", what, want)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != want.Hex {
		return fmt.Errorf("%s is corrupt: it hashes to sha256:%s, not %s", what, got, want)
	}
	return nil
}

// kernelPath reports whether a cleaned, relative path from an image is part
// of the kernel: /boot/vmlinuz and the modules tree.
func kernelPath(p string) bool {
	if p == "boot/vmlinuz" {
		return true
	}
	for _, m := range []string{"lib/modules", "usr/lib/modules"} {
		if p == m || strings.HasPrefix(p, m+"/") {
			return true
		}
	}
	return false
}

// extractKernel writes the kernel files of the flattened image (whiteouts
// applied by mutate.Extract) under dir. Symlinks are recreated as they are
// but never followed: an entry below a symlink is an error.
func extractKernel(img v1.Image, dir string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	symlinks := map[string]bool{}
	extracted := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading image files: %w", err)
		}
		p := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if !kernelPath(p) {
			continue
		}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if symlinks[d] {
				return fmt.Errorf("image file /%s lies below the symlink /%s", p, d)
			}
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if hdr.Typeflag != tar.TypeDir {
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, hdr.FileInfo().Mode().Perm()|0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("extracting /%s: %w", p, err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
			symlinks[p] = true
		case tar.TypeLink:
			src := strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/")
			if !extracted[src] {
				return fmt.Errorf("image file /%s is a hard link to /%s, which is not part of the kernel", p, src)
			}
			if err := os.Link(filepath.Join(dir, filepath.FromSlash(src)), target); err != nil {
				return err
			}
		default:
			continue // devices, fifos: not part of a kernel
		}
		extracted[p] = true
	}
}
