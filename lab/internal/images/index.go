package images

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cnilab/cnilab/lab/internal/atomicfile"
)

// IndexFile is the name of the list of built images in the output
// directory.
const IndexFile = "images.json"

// Record is what images.json says of one image.
type Record struct {
	Name      string   `json:"name"`
	Reference string   `json:"reference"`
	Aliases   []string `json:"aliases,omitempty"`
	Tarball   string   `json:"tarball"` // file name in the output directory
	// Digest is the image manifest's. ImageID is its configuration's: the
	// image ID of `docker images` and `crictl images`, and the digest that
	// names the image in containerd after an import (containerd writes
	// its own manifest for a docker save tarball, so `ctr images ls` shows
	// another manifest digest).
	Digest  string `json:"digest"`
	ImageID string `json:"imageID"`
	Size    int64  `json:"size"` // of the tarball, in bytes
	// InputHash covers the names, the configuration and every file's path,
	// mode and content: the image is rebuilt when it changes.
	InputHash string       `json:"inputHash"`
	Files     []FileRecord `json:"files"`
}

// FileRecord is one member of an image's layer.
type FileRecord struct {
	Path string `json:"path"`
	Type string `json:"type"` // file, dir or symlink
	Mode string `json:"mode"` // octal
	Size int    `json:"size,omitempty"`
	Link string `json:"link,omitempty"`
	From string `json:"from,omitempty"` // the host file copied
}

type index struct {
	Images []Record `json:"images"`
}

// Records reads images.json of dir: the images built there, in name order
// (none when dir has no images.json), for importing their tarballs.
func Records(dir string) ([]Record, error) {
	idx, err := readIndex(dir)
	if err != nil {
		return nil, err
	}
	return byName(idx), nil
}

func byName(records map[string]Record) []Record {
	return slices.SortedFunc(maps.Values(records), func(a, b Record) int { return strings.Compare(a.Name, b.Name) })
}

// readIndex reads images.json of dir by image name; none yet is empty.
func readIndex(dir string) (map[string]Record, error) {
	p := filepath.Join(dir, IndexFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	var idx index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("images: %s: %w (remove it to rebuild every image)", p, err)
	}
	out := map[string]Record{}
	for _, r := range idx.Images {
		out[r.Name] = r
	}
	return out, nil
}

// writeIndex replaces images.json of dir, its images in name order.
func writeIndex(dir string, records map[string]Record) error {
	idx := index{Images: byName(records)}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, IndexFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	return nil
}

// upToDate says whether the tarball recorded by prev holds the inputs of
// hash, and is still there, whole.
func upToDate(prev Record, hash, tarPath string) bool {
	if prev.InputHash != hash || filepath.Base(tarPath) != prev.Tarball {
		return false
	}
	st, err := os.Stat(tarPath)
	return err == nil && st.Size() == prev.Size
}

func newRecord(image string, tags []name.Tag, img v1.Image, entries []*entry, tarPath string) (Record, error) {
	digest, err := img.Digest()
	if err != nil {
		return Record{}, fmt.Errorf("image %s: %w", image, err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return Record{}, fmt.Errorf("image %s: %w", image, err)
	}
	st, err := os.Stat(tarPath)
	if err != nil {
		return Record{}, fmt.Errorf("image %s: %w", image, err)
	}
	r := Record{Name: image, Reference: tags[0].String(), Tarball: filepath.Base(tarPath),
		Digest: digest.String(), ImageID: id.String(), Size: st.Size()}
	for _, t := range tags[1:] {
		r.Aliases = append(r.Aliases, t.String())
	}
	for _, e := range entries {
		r.Files = append(r.Files, FileRecord{Path: e.path, Type: typeName[e.typ], Mode: fmt.Sprintf("%04o", e.mode),
			Size: len(e.data), Link: e.link, From: e.from})
	}
	return r, nil
}

var typeName = map[byte]string{tar.TypeReg: "file", tar.TypeDir: "dir", tar.TypeSymlink: "symlink"}
