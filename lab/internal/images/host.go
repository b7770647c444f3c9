package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MissingInputError is an image input file that does not exist.
type MissingInputError struct {
	Image string // the image's short name
	Path  string // the missing file
	// Command makes the file: "make tools", "apt-get install iptables".
	Command string
}

func (e *MissingInputError) Error() string {
	msg := fmt.Sprintf("image %s: input %s is missing", e.Image, e.Path)
	if e.Command != "" {
		msg += " (`" + e.Command + "` makes it)"
	}
	return msg
}

// addFile adds one of a spec's files.
func (l *layer) addFile(image string, f File) error {
	e := &entry{path: f.Path, xattrs: f.Xattrs}
	switch {
	case f.Dir:
		e.typ, e.mode = tar.TypeDir, modeOf(f.Mode, 0o755)
	case f.Link != "":
		e.typ, e.mode, e.link = tar.TypeSymlink, 0o777, f.Link
	case f.Data != nil:
		e.typ, e.mode, e.data = tar.TypeReg, modeOf(f.Mode, 0o644), f.Data
	default:
		data, err := os.ReadFile(f.Source)
		if errors.Is(err, fs.ErrNotExist) {
			return &MissingInputError{Image: image, Path: f.Source, Command: f.Make}
		}
		if err != nil {
			return fmt.Errorf("image %s: %w", image, err)
		}
		e.typ, e.mode, e.data, e.from = tar.TypeReg, modeOf(f.Mode, 0o755), data, f.Source
	}
	return l.add(e)
}

// maxLinks is how many symbolic links one path may go through, as in Linux.
const maxLinks = 40

// follow resolves the host path p component by component, as the kernel
// does, and adds every symbolic link met on the way to the layer (with its
// target as written), so the same path resolves the same way in the image.
// It returns the path p ends at, which goes through no symbolic link.
func (l *layer) follow(p string) (string, error) {
	rest := splitPath(p)
	cur := "/"
	for links := 0; len(rest) > 0; {
		next := filepath.Join(cur, rest[0])
		rest = rest[1:]
		fi, err := os.Lstat(next)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if err := l.add(&entry{path: next, typ: tar.TypeSymlink, mode: 0o777, link: target, from: next}); err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(splitPath(target), rest...)
	}
	return cur, nil
}

func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
}

// addHost adds the host path p at the same path in the image, with the
// symbolic links on the way (see follow): a regular file, or a directory
// with everything below it. Host files keep their executable bits only:
// 0755 or 0644.
func (l *layer) addHost(p string) error {
	real, err := l.follow(p)
	if err != nil {
		return err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode().IsRegular():
		return l.addHostFile(real, fi)
	case fi.IsDir():
		return l.addHostDir(real)
	}
	return fmt.Errorf("%s: neither a regular file nor a directory", real)
}

func (l *layer) addHostFile(p string, fi fs.FileInfo) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	mode := int64(0o644)
	if fi.Mode()&0o111 != 0 {
		mode = 0o755
	}
	return l.add(&entry{path: p, typ: tar.TypeReg, mode: mode, data: data, from: p})
}

// addHostDir adds the directory dir (which goes through no symbolic link)
// and everything below it; a symbolic link below it brings its target.
func (l *layer) addHostDir(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			return l.add(&entry{path: p, typ: tar.TypeDir, mode: 0o755, from: p})
		case d.Type()&fs.ModeSymlink != 0:
			return l.addHost(p)
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			return l.addHostFile(p, fi)
		}
		return fmt.Errorf("%s: not a regular file, directory or symbolic link", p)
	})
}
