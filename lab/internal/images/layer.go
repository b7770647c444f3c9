package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
)

// epoch is the time of every file and of the image: builds of the same
// inputs give the same digest.
var epoch = time.Unix(0, 0).UTC()

// entry is one member of an image's layer.
type entry struct {
	path   string // absolute and clean, in the image
	typ    byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode   int64  // permission bits (with the sticky bit)
	link   string
	data   []byte
	xattrs map[string]string
	from   string // the host file the content was copied from; "" if generated
}

func (e *entry) same(o *entry) bool {
	return e.typ == o.typ && e.mode == o.mode && e.link == o.link &&
		xattrString(e.xattrs) == xattrString(o.xattrs) && bytes.Equal(e.data, o.data)
}

// xattrString renders xattrs in a stable order, for comparing and hashing.
func xattrString(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%q=%q;", k, m[k])
	}
	return b.String()
}

// layer is the set of an image's entries being assembled.
type layer struct {
	entries map[string]*entry
	scan    []*entry // regular files whose shared libraries are still to add
}

func newLayer() *layer { return &layer{entries: map[string]*entry{}} }

// add puts e in the layer. The same path twice is fine only with the same
// entry (a library two binaries need); otherwise it is an error.
func (l *layer) add(e *entry) error {
	if old, ok := l.entries[e.path]; ok {
		if !old.same(e) {
			return fmt.Errorf("%s: two different files for the same path (from %q and %q)", e.path, old.from, e.from)
		}
		return nil
	}
	l.entries[e.path] = e
	if e.typ == tar.TypeReg {
		l.scan = append(l.scan, e)
	}
	return nil
}

// sorted returns the entries with every missing parent directory (0755),
// parents before their children, in a stable order.
func (l *layer) sorted() ([]*entry, error) {
	for _, p := range slices.Collect(maps.Keys(l.entries)) {
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			parent, ok := l.entries[dir]
			if !ok {
				l.entries[dir] = &entry{path: dir, typ: tar.TypeDir, mode: 0o755}
				continue
			}
			if parent.typ != tar.TypeDir {
				return nil, fmt.Errorf("%s: its parent %s is not a directory in the image", p, dir)
			}
		}
	}
	out := slices.Collect(maps.Values(l.entries))
	slices.SortFunc(out, func(a, b *entry) int {
		return slices.Compare(strings.Split(a.path, "/"), strings.Split(b.path, "/"))
	})
	return out, nil
}

// inputHash is a digest of everything that makes the layer: paths, types,
// modes, link targets, attributes and contents (not where they came from).
func inputHash(entries []*entry, config []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "cnilab-images %d\n%s\n", builderVersion, config)
	for _, e := range entries {
		sum := sha256.Sum256(e.data)
		fmt.Fprintf(h, "%q %c %o %q %s %x\n", e.path, e.typ, e.mode, e.link, xattrString(e.xattrs), sum)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// builderVersion changes when the builder lays images out differently, so
// images built before are rebuilt.
const builderVersion = 1

// writeTar writes the entries as an uncompressed tar: owner root (0:0), the
// fixed time, names relative to / (directories with a trailing slash),
// extended attributes as PAX SCHILY.xattr records.
func writeTar(entries []*entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     strings.TrimPrefix(e.path, "/"),
			Linkname: e.link,
			Mode:     e.mode,
			Size:     int64(len(e.data)),
			ModTime:  epoch,
		}
		if e.typ == tar.TypeDir {
			hdr.Name += "/"
		}
		if len(e.xattrs) > 0 {
			hdr.Format = tar.FormatPAX
			hdr.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.path, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

// modeOf is the tar mode of a file: its permission bits and sticky bit, or
// those of def when m is 0.
func modeOf(m, def fs.FileMode) int64 {
	if m == 0 {
		m = def
	}
	mode := int64(m.Perm())
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}
