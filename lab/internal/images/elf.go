package images

import (
	"bytes"
	"debug/elf"
	"fmt"
	"path/filepath"
	"strings"
)

// systemLibDirs are the directories Debian's dynamic loader searches on
// x86-64 when /etc/ld.so.cache does not name a library (`ld.so --help`
// lists them); the images have no cache.
var systemLibDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"}

// addLibraries adds, for every ELF file of the layer and then for every
// library that brings, the program interpreter (PT_INTERP) and the shared
// objects of DT_NEEDED, found as the loader finds them: in DT_RUNPATH (or
// DT_RPATH), then systemLibDirs. Static binaries need nothing.
func (l *layer) addLibraries() error {
	for len(l.scan) > 0 {
		e := l.scan[0]
		l.scan = l.scan[1:]
		if err := l.addLibrariesOf(e); err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
	}
	return nil
}

func (l *layer) addLibrariesOf(e *entry) error {
	if !bytes.HasPrefix(e.data, []byte(elf.ELFMAG)) {
		return nil
	}
	f, err := elf.NewFile(bytes.NewReader(e.data))
	if err != nil {
		return fmt.Errorf("read ELF: %w", err)
	}
	defer f.Close()
	if interp := interpreter(f); interp != "" {
		if err := l.addHost(interp); err != nil {
			return fmt.Errorf("program interpreter: %w", err)
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("read DT_NEEDED: %w", err)
	}
	dirs, err := searchDirs(f, filepath.Dir(e.path))
	if err != nil {
		return err
	}
	for _, lib := range needed {
		p, err := findLibrary(lib, dirs, f)
		if err != nil {
			return err
		}
		if err := l.addHost(p); err != nil {
			return fmt.Errorf("%s: %w", lib, err)
		}
	}
	return nil
}

// interpreter is the PT_INTERP path of f, "" for a static binary.
func interpreter(f *elf.File) string {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return ""
		}
		return strings.TrimRight(string(b), "\x00")
	}
	return ""
}

// searchDirs is where the loader looks for f's libraries: DT_RUNPATH, or
// DT_RPATH when there is no RUNPATH, with $ORIGIN the file's directory in
// the image, then the system directories.
func searchDirs(f *elf.File, origin string) ([]string, error) {
	paths, err := f.DynString(elf.DT_RUNPATH)
	if err == nil && len(paths) == 0 {
		paths, err = f.DynString(elf.DT_RPATH)
	}
	if err != nil {
		return nil, fmt.Errorf("read the library search path: %w", err)
	}
	var dirs []string
	for _, p := range paths {
		for _, d := range filepath.SplitList(p) {
			d = strings.NewReplacer("$ORIGIN", origin, "${ORIGIN}", origin).Replace(d)
			if filepath.IsAbs(d) {
				dirs = append(dirs, d)
			}
		}
	}
	return append(dirs, systemLibDirs...), nil
}

// findLibrary is the first file named lib in dirs that is an ELF shared
// object of f's class and machine (the loader skips others, such as 32-bit
// libraries).
func findLibrary(lib string, dirs []string, f *elf.File) (string, error) {
	if strings.Contains(lib, "/") {
		return lib, nil
	}
	for _, d := range dirs {
		p := filepath.Join(d, lib)
		if compatible(p, f) {
			return p, nil
		}
	}
	return "", fmt.Errorf("needs %s, which is in none of %s on this machine", lib, strings.Join(dirs, ", "))
}

func compatible(p string, f *elf.File) bool {
	g, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer g.Close()
	return g.Class == f.Class && g.Machine == f.Machine
}
