// Package initramfs builds the initramfs a lab virtual machine boots from: a
// deterministic, uncompressed cpio "newc" archive holding the guest init, the
// static lab binaries and the kernel's own modules (decompressed on the host),
// cached on disk by a hash of its content.
//
// The archive is reproducible: entries are sorted by path, parents come before
// their children, every entry has mtime 0, uid and gid 0 and a sequential inode
// number, so the same inputs always give byte-identical output.
package initramfs

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// The cpio "newc" format (the one the kernel unpacks, see the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst): every record is
// a 110-byte ASCII header, the NUL-terminated name padded to a multiple of 4
// bytes (counting the header), then the data padded to a multiple of 4 bytes.
const (
	newcMagic   = "070701"
	headerLen   = 110
	trailerName = "TRAILER!!!"

	// File type bits of the mode field (the values of stat's S_IF*).
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
	modeChar    = 0o020000

	// maxSize is the largest size the 8-hex-digit size field holds.
	maxSize = 1<<32 - 1
)

// Writer writes a cpio newc archive record by record, in the order it is
// called, with sequential inode numbers starting at 1, mtime 0 and uid/gid 0.
// It does not sort or add parent directories: WriteArchive does.
// Close writes the trailer; it does not close the underlying writer.
type Writer struct {
	w      *bufio.Writer
	ino    uint32
	off    int64
	closed bool
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 1<<20)}
}

// header is one record's header fields that vary between our records.
type header struct {
	name         string
	mode         uint32
	nlink        uint32
	size         int64
	rmaj, rmin   uint32
	noInodeCount bool
}

func (cw *Writer) writeHeader(h header) error {
	if cw.closed {
		return fmt.Errorf("cpio: write %s: archive already closed", h.name)
	}
	if h.name == "" || strings.ContainsRune(h.name, 0) {
		return fmt.Errorf("cpio: invalid entry name %q", h.name)
	}
	if h.size < 0 || h.size > maxSize {
		return fmt.Errorf("cpio: %s: size %d does not fit a newc header", h.name, h.size)
	}
	var ino uint32
	if !h.noInodeCount {
		cw.ino++
		ino = cw.ino
	}
	fields := [13]uint32{
		ino,
		h.mode,
		0, // uid
		0, // gid
		h.nlink,
		0, // mtime
		uint32(h.size),
		0, 0, // devmajor, devminor of the device holding the file
		h.rmaj, h.rmin, // the device a device node stands for
		uint32(len(h.name) + 1), // name size, with its NUL
		0,                       // check, unused by newc
	}
	var b strings.Builder
	b.Grow(headerLen + len(h.name) + 4)
	b.WriteString(newcMagic)
	for _, f := range fields {
		fmt.Fprintf(&b, "%08x", f)
	}
	b.WriteString(h.name)
	b.WriteByte(0)
	if _, err := io.WriteString(cw.w, b.String()); err != nil {
		return fmt.Errorf("cpio: write header of %s: %w", h.name, err)
	}
	cw.off += int64(b.Len())
	return cw.pad()
}

// pad writes NULs up to the next multiple of 4 bytes.
func (cw *Writer) pad() error {
	n := (4 - cw.off%4) % 4
	if n == 0 {
		return nil
	}
	if _, err := cw.w.Write(make([]byte, n)); err != nil {
		return fmt.Errorf("cpio: write padding: %w", err)
	}
	cw.off += n
	return nil
}

func (cw *Writer) data(name string, size int64, r io.Reader) error {
	n, err := io.Copy(cw.w, io.LimitReader(r, size))
	cw.off += n
	if err != nil {
		return fmt.Errorf("cpio: write data of %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("cpio: write data of %s: got %d bytes, header says %d (file changed while writing?)", name, n, size)
	}
	return cw.pad()
}

// Dir writes a directory record.
func (cw *Writer) Dir(name string, perm fs.FileMode) error {
	return cw.writeHeader(header{name: name, mode: modeDir | unixPerm(perm), nlink: 2})
}

// File writes a regular file of size bytes read from r.
func (cw *Writer) File(name string, perm fs.FileMode, size int64, r io.Reader) error {
	// nlink 1: the kernel treats regular files with nlink >= 2 as hard links.
	if err := cw.writeHeader(header{name: name, mode: modeRegular | unixPerm(perm), nlink: 1, size: size}); err != nil {
		return err
	}
	return cw.data(name, size, r)
}

// Symlink writes a symbolic link to target.
func (cw *Writer) Symlink(name, target string) error {
	if target == "" {
		return fmt.Errorf("cpio: symlink %s has an empty target", name)
	}
	if err := cw.writeHeader(header{name: name, mode: modeSymlink | 0o777, nlink: 1, size: int64(len(target))}); err != nil {
		return err
	}
	return cw.data(name, int64(len(target)), strings.NewReader(target))
}

// CharDev writes a character device node (such as dev/console, which the
// kernel opens as the initial console before it starts /init).
func (cw *Writer) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	return cw.writeHeader(header{name: name, mode: modeChar | unixPerm(perm), nlink: 1, rmaj: major, rmin: minor})
}

// unixPerm returns the permission bits of m as stat's st_mode has them,
// setuid, setgid and sticky included.
func unixPerm(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

// Close writes the trailer record and flushes. It does not close the
// underlying writer.
func (cw *Writer) Close() error {
	if cw.closed {
		return nil
	}
	if err := cw.writeHeader(header{name: trailerName, nlink: 1, noInodeCount: true}); err != nil {
		return err
	}
	cw.closed = true
	if err := cw.w.Flush(); err != nil {
		return fmt.Errorf("cpio: flush: %w", err)
	}
	return nil
}
