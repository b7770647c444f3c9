package images

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Options of Build.
type Options struct {
	Dirs               // where the inputs are
	Output   string    // directory of the tarballs and images.json
	Only     []string  // short names of the images to build; empty: all
	Force    bool      // rebuild images that are up to date
	Progress io.Writer // one line or two per image; nil: none
}

// Build builds the images of the catalog that o.Only names (all when
// empty) into o.Output, one after the other. An image that fails, such as
// one whose input is missing (a *MissingInputError), does not stop the
// others. Build returns the records of the images built or found up to
// date, and the failures joined.
func Build(ctx context.Context, o Options) ([]Record, error) {
	specs, err := Select(Catalog(o.Dirs), o.Only)
	if err != nil {
		return nil, err
	}
	return buildSpecs(ctx, specs, o)
}

// buildSpecs is Build with the images given; o.Dirs and o.Only are unused.
func buildSpecs(ctx context.Context, specs []Spec, o Options) ([]Record, error) {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if err := os.MkdirAll(o.Output, 0o755); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	index, err := readIndex(o.Output)
	if err != nil {
		return nil, err
	}
	var out []Record
	var errs []error
	for _, s := range specs {
		if err := ctx.Err(); err != nil {
			return out, errors.Join(append(errs, err)...)
		}
		rec, err := buildOne(s, index[s.Name], o)
		if err != nil {
			fmt.Fprintf(o.Progress, "images: %s: FAILED: %v\n", s.Name, err)
			errs = append(errs, err)
			continue
		}
		out = append(out, rec)
		index[s.Name] = rec
		if err := writeIndex(o.Output, index); err != nil {
			return out, errors.Join(append(errs, err)...)
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%d of %d images failed:\n%w", len(errs), len(specs), errors.Join(errs...))
	}
	return out, nil
}

// buildOne builds s unless prev, the record of the last build, says the
// tarball already holds the same inputs.
func buildOne(s Spec, prev Record, o Options) (Record, error) {
	start := time.Now()
	entries, err := resolve(s)
	if err != nil {
		return Record{}, err
	}
	cfg := configFile(s)
	hash, err := specHash(s, cfg, entries)
	if err != nil {
		return Record{}, err
	}
	tarPath := filepath.Join(o.Output, s.Name+".tar")
	if !o.Force && upToDate(prev, hash, tarPath) {
		fmt.Fprintf(o.Progress, "images: %s: up to date: %s (%s)\n", s.Name, tarPath, prev.Digest)
		return prev, nil
	}
	tags, err := s.tags()
	if err != nil {
		return Record{}, err
	}
	fmt.Fprintf(o.Progress, "images: %s: building %s: %d entries, %s\n", s.Name, tags[0], len(entries), mb(contentSize(entries)))
	rec, err := write(s, cfg, entries, tarPath)
	if err != nil {
		return Record{}, err
	}
	rec.InputHash = hash
	fmt.Fprintf(o.Progress, "images: %s: wrote %s (%s, %s) in %s\n", s.Name, tarPath, mb(rec.Size), rec.Digest, time.Since(start).Round(100*time.Millisecond))
	return rec, nil
}

// resolve gathers an image's entries: its files, the host paths, the
// shared libraries of every ELF file, and the parent directories.
func resolve(s Spec) ([]*entry, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	l := newLayer()
	for _, f := range s.Files {
		if err := l.addFile(s.Name, f); err != nil {
			return nil, err
		}
	}
	if err := l.addHostPaths(s.Name, s.Host); err != nil {
		return nil, err
	}
	if err := l.addLibraries(); err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Name, err)
	}
	entries, err := l.sorted()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Name, err)
	}
	return entries, nil
}

func (l *layer) addHostPaths(image string, paths []HostPath) error {
	for _, h := range paths {
		_, err := os.Stat(h.Path)
		switch {
		case errors.Is(err, os.ErrNotExist) && h.Optional:
			continue
		case errors.Is(err, os.ErrNotExist):
			return &MissingInputError{Image: image, Path: h.Path, Command: "apt-get install " + h.Package}
		}
		if err := l.addHost(h.Path); err != nil {
			return fmt.Errorf("image %s: from this machine: %w", image, err)
		}
	}
	return nil
}

// configFile is the image configuration of s, without its layer.
func configFile(s Spec) *v1.ConfigFile {
	cfg := &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config: v1.Config{
			Entrypoint: s.Entrypoint,
			Cmd:        s.Cmd,
			User:       s.User,
			WorkingDir: s.WorkingDir,
			Env:        append([]string{"PATH=" + DefaultPath}, s.Env...),
		},
	}
	if len(s.ExposedPorts) > 0 {
		cfg.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range s.ExposedPorts {
			cfg.Config.ExposedPorts[p] = struct{}{}
		}
	}
	return cfg
}

// specHash is the input hash of an image: its names, configuration and
// layer content.
func specHash(s Spec, cfg *v1.ConfigFile, entries []*entry) (string, error) {
	tags, err := s.tags()
	if err != nil {
		return "", err
	}
	names := make([]string, len(tags))
	for i, t := range tags {
		names[i] = t.String()
	}
	b, err := json.Marshal(struct {
		Tags   []string
		Config *v1.ConfigFile
	}{names, cfg})
	if err != nil {
		return "", fmt.Errorf("image %s: %w", s.Name, err)
	}
	return inputHash(entries, b), nil
}

// image assembles the image: the empty image, one layer of the entries,
// the configuration.
func image(s Spec, cfg *v1.ConfigFile, entries []*entry) (v1.Image, error) {
	tarBytes, err := writeTar(entries)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	}, tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: epoch}, CreatedBy: "cnilab images build --only " + s.Name,
	}})
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	withLayer, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.RootFS, cfg.History = withLayer.RootFS, withLayer.History
	return mutate.ConfigFile(img, cfg)
}

// write builds the image and writes its tarball, through a temporary file
// so that a failed build leaves the last tarball whole.
func write(s Spec, cfg *v1.ConfigFile, entries []*entry, tarPath string) (Record, error) {
	img, err := image(s, cfg, entries)
	if err != nil {
		return Record{}, fmt.Errorf("image %s: %w", s.Name, err)
	}
	tags, err := s.tags()
	if err != nil {
		return Record{}, err
	}
	refs := map[name.Reference]v1.Image{}
	for _, t := range tags {
		refs[t] = img
	}
	tmp := tarPath + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		os.Remove(tmp)
		return Record{}, fmt.Errorf("image %s: write %s: %w", s.Name, tmp, err)
	}
	if err := os.Rename(tmp, tarPath); err != nil {
		return Record{}, fmt.Errorf("image %s: %w", s.Name, err)
	}
	return newRecord(s.Name, tags, img, entries, tarPath)
}

// tags are the image's names, fully qualified: the reference, then the
// aliases.
func (s Spec) tags() ([]name.Tag, error) {
	var out []name.Tag
	for _, r := range append([]string{s.Reference}, s.Aliases...) {
		t, err := qualified(r)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", s.Name, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// qualified parses an image reference with an explicit tag and names it
// fully, as containerd does: "cnilab/cnilab:dev" is
// "docker.io/cnilab/cnilab:dev".
func qualified(ref string) (name.Tag, error) {
	t, err := name.NewTag(ref)
	if err != nil {
		return name.Tag{}, fmt.Errorf("reference %q: %w", ref, err)
	}
	if !strings.HasSuffix(ref, ":"+t.TagStr()) {
		return name.Tag{}, fmt.Errorf("reference %q: want an explicit tag", ref)
	}
	registry := t.RegistryStr()
	if registry == name.DefaultRegistry {
		registry = "docker.io"
	}
	return name.NewTag(registry + "/" + t.RepositoryStr() + ":" + t.TagStr())
}

func contentSize(entries []*entry) int64 {
	var n int64
	for _, e := range entries {
		n += int64(len(e.data))
	}
	return n
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
