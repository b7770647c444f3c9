package initramfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Kind is the type of an archive entry.
type Kind int

// The entry kinds.
const (
	// KindFile is a regular file, from a host path (Source) or bytes (Data).
	KindFile Kind = iota
	// KindDir is a directory.
	KindDir
	// KindSymlink is a symbolic link to Target.
	KindSymlink
	// KindCharDev is a character device node (Major, Minor).
	KindCharDev
)

func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindDir:
		return "dir"
	case KindSymlink:
		return "symlink"
	case KindCharDev:
		return "chardev"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// File is one entry of the archive.
type File struct {
	// Path is the path in the guest, such as "/usr/bin/nsenter"; a leading
	// slash is optional.
	Path string
	Kind Kind
	// Mode holds the permission bits. Zero means 0755 for directories and
	// for files whose Source is executable, 0644 for other files.
	Mode fs.FileMode
	// Source is the host path of a regular file's content; when empty, Data
	// is the content.
	Source string
	Data   []byte
	// Target is a symbolic link's target.
	Target string
	// Major and Minor number a device node.
	Major, Minor uint32
}

// Spec is what an archive is built from.
type Spec struct {
	// Files are the entries; parent directories that are not listed are
	// added with mode 0755.
	Files []File
	// CacheDir is where Build writes the archive (created if missing).
	CacheDir string

	// Modules describes the kernel modules GuestSpec put in the archive. It is
	// informational and not part of the archive's key.
	Modules ModuleReport
	// Warnings are the problems GuestSpec found that do not stop the build,
	// such as an optional module the kernel does not have.
	Warnings []string
}

// entry is a normalized File: clean relative path, defaulted mode, and for a
// regular file its size and, once hashed, its content's digest.
type entry struct {
	File
	name   string // clean, relative, no leading slash
	size   int64
	sum    [sha256.Size]byte
	hashed bool
}

// normalize checks the files, cleans their paths, adds missing parent
// directories, and returns the entries sorted by path. Sorting by path puts
// every directory before its children: a path sorts before every path it is a
// prefix of.
func normalize(files []File) ([]*entry, error) {
	byName := map[string]*entry{}
	explicit := map[string]bool{}
	for i := range files {
		f := files[i]
		name, err := cleanPath(f.Path)
		if err != nil {
			return nil, err
		}
		e := &entry{File: f, name: name}
		switch f.Kind {
		case KindFile:
			if err := e.stat(); err != nil {
				return nil, err
			}
		case KindDir:
			if e.Mode == 0 {
				e.Mode = 0o755
			}
		case KindSymlink:
			if f.Target == "" {
				return nil, fmt.Errorf("initramfs: symlink %s has no target", f.Path)
			}
			e.Mode = 0o777
		case KindCharDev:
			if e.Mode == 0 {
				e.Mode = 0o600
			}
		default:
			return nil, fmt.Errorf("initramfs: %s: unknown entry kind %v", f.Path, f.Kind)
		}
		if prev, ok := byName[name]; ok {
			if prev.Kind == KindDir && e.Kind == KindDir && prev.Mode == e.Mode {
				continue
			}
			return nil, fmt.Errorf("initramfs: %s is in the archive twice (%s and %s)", "/"+name, prev.Kind, e.Kind)
		}
		byName[name] = e
		explicit[name] = true
	}
	// Add the missing parents and check that every parent is a directory.
	for name := range explicit {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			p, ok := byName[dir]
			if !ok {
				byName[dir] = &entry{File: File{Path: dir, Kind: KindDir, Mode: 0o755}, name: dir}
				continue
			}
			if p.Kind != KindDir {
				return nil, fmt.Errorf("initramfs: /%s is a %s but /%s is inside it", dir, p.Kind, name)
			}
		}
	}
	out := make([]*entry, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// cleanPath turns a guest path into the archive's form: relative, clean,
// inside the root.
func cleanPath(p string) (string, error) {
	name := path.Clean("/" + p)
	if p == "" || name == "/" {
		return "", fmt.Errorf("initramfs: invalid guest path %q", p)
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("initramfs: guest path %q contains a NUL byte", p)
	}
	return strings.TrimPrefix(name, "/"), nil
}

// stat fills a regular file's size and default mode.
func (e *entry) stat() error {
	if e.Source == "" {
		e.size = int64(len(e.Data))
		if e.Mode == 0 {
			e.Mode = 0o644
		}
		return nil
	}
	if e.Data != nil {
		return fmt.Errorf("initramfs: %s has both a source file and data", e.Path)
	}
	st, err := os.Stat(e.Source)
	if err != nil {
		return fmt.Errorf("initramfs: source of %s: %w", e.Path, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("initramfs: source of %s: %s is not a regular file", e.Path, e.Source)
	}
	if st.Size() > maxSize {
		return fmt.Errorf("initramfs: source of %s: %s is %d bytes, more than a cpio newc entry holds", e.Path, e.Source, st.Size())
	}
	e.size = st.Size()
	if e.Mode == 0 {
		e.Mode = 0o644
		if st.Mode()&0o111 != 0 {
			e.Mode = 0o755
		}
	}
	return nil
}

// open returns a regular file's content.
func (e *entry) open() (io.ReadCloser, error) {
	if e.Source == "" {
		return io.NopCloser(bytes.NewReader(e.Data)), nil
	}
	f, err := os.Open(e.Source)
	if err != nil {
		return nil, fmt.Errorf("initramfs: source of %s: %w", e.Path, err)
	}
	return f, nil
}

// hash computes a regular file's digest (and checks its size again).
func (e *entry) hash() error {
	if e.Source == "" {
		e.sum = sha256.Sum256(e.Data)
		e.hashed = true
		return nil
	}
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return fmt.Errorf("initramfs: hash %s: %w", e.Source, err)
	}
	if n != e.size {
		return fmt.Errorf("initramfs: %s changed size while building (%d, then %d bytes)", e.Source, e.size, n)
	}
	copy(e.sum[:], h.Sum(nil))
	e.hashed = true
	return nil
}

// write writes the entries, in their order, then the trailer. A regular file
// whose digest is known is checked against it while it is copied.
func write(w io.Writer, entries []*entry) error {
	cw := NewWriter(w)
	for _, e := range entries {
		var err error
		switch e.Kind {
		case KindDir:
			err = cw.Dir(e.name, e.Mode)
		case KindSymlink:
			err = cw.Symlink(e.name, e.Target)
		case KindCharDev:
			err = cw.CharDev(e.name, e.Mode, e.Major, e.Minor)
		case KindFile:
			err = writeFile(cw, e)
		}
		if err != nil {
			return err
		}
	}
	return cw.Close()
}

func writeFile(cw *Writer, e *entry) error {
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	var h hash.Hash
	var src io.Reader = r
	if e.hashed {
		h = sha256.New()
		src = io.TeeReader(r, h)
	}
	if err := cw.File(e.name, e.Mode, e.size, src); err != nil {
		return err
	}
	if h != nil && !bytes.Equal(h.Sum(nil), e.sum[:]) {
		return fmt.Errorf("initramfs: %s changed while building the archive", e.Source)
	}
	return nil
}

// WriteArchive writes files as a deterministic cpio newc archive to w:
// sorted by path, parents first (missing ones added), then the trailer.
func WriteArchive(w io.Writer, files []File) error {
	entries, err := normalize(files)
	if err != nil {
		return err
	}
	return write(w, entries)
}

// keyVersion changes whenever the archive layout this package writes changes,
// so archives cached by an older version are not reused.
const keyVersion = "cnilab-initramfs-v1"

// Key returns the hex sha256 that names the archive of files: it covers every
// entry's path, kind, mode, link target, device numbers and content digest.
func Key(files []File) (string, error) {
	entries, err := normalize(files)
	if err != nil {
		return "", err
	}
	return key(entries)
}

func key(entries []*entry) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", keyVersion)
	for _, e := range entries {
		fmt.Fprintf(h, "%q %s %o", e.name, e.Kind, e.Mode)
		switch e.Kind {
		case KindFile:
			if !e.hashed {
				if err := e.hash(); err != nil {
					return "", err
				}
			}
			fmt.Fprintf(h, " %d %x", e.size, e.sum)
		case KindSymlink:
			fmt.Fprintf(h, " %q", e.Target)
		case KindCharDev:
			fmt.Fprintf(h, " %d:%d", e.Major, e.Minor)
		}
		fmt.Fprintln(h)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Build writes the archive of spec into spec.CacheDir and returns its path.
// The file is named by Key of spec.Files, so an archive already built from
// the same content is reused as is; a new one is written to a temporary file
// and renamed into place.
func Build(spec Spec) (string, error) {
	if spec.CacheDir == "" {
		return "", errors.New("initramfs: build: Spec.CacheDir is empty")
	}
	entries, err := normalize(spec.Files)
	if err != nil {
		return "", err
	}
	k, err := key(entries)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(spec.CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("initramfs: build: %w", err)
	}
	out := filepath.Join(spec.CacheDir, "initramfs-"+k[:32]+".cpio")
	if st, err := os.Stat(out); err == nil && st.Mode().IsRegular() {
		return out, nil
	}
	tmp, err := os.CreateTemp(spec.CacheDir, ".initramfs-*.tmp")
	if err != nil {
		return "", fmt.Errorf("initramfs: build: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if err := write(tmp, entries); err != nil {
		tmp.Close()
		return "", fmt.Errorf("initramfs: build %s: %w", out, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", fmt.Errorf("initramfs: build %s: %w", out, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("initramfs: build %s: %w", out, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("initramfs: build: %w", err)
	}
	return out, nil
}
