package initramfs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/cnilab/cnilab/kernels/modinfo"
)

// ModuleReport says what became of the kernel modules a guest asked for.
type ModuleReport struct {
	// Release is the kernel release the modules belong to.
	Release string
	// Order is the load order of the module files in the archive,
	// dependencies first, as canonical names (underscores).
	Order []string
	// Builtin are the wanted or needed modules built into the kernel.
	Builtin []string
	// Missing are the optional modules the kernel has neither as a file nor
	// built in.
	Missing []string
}

// NotFoundError is the error for a module that a kernel has neither as a
// file nor built in.
type NotFoundError struct {
	Module, Release string
	msg             string
}

func (e *NotFoundError) Error() string { return e.msg }

// Modules resolves the wanted modules of the kernel whose modules directory
// (…/lib/modules/<release>) is modulesDir, and their dependencies, read from
// each module's own .modinfo section. It returns the plain (decompressed)
// module files to put in the archive under /lib/modules/<release>/, where
// <release> is modulesDir's base name, and their load order, dependencies
// first. A wanted module built into the kernel needs nothing; one that is
// neither a file nor built in is an error.
func Modules(modulesDir string, want []string) (files []File, order []string, err error) {
	rel := filepath.Base(filepath.Clean(modulesDir))
	files, rep, err := resolveModules(modulesDir, rel, want, nil)
	if err != nil {
		return nil, nil, err
	}
	return files, rep.Order, nil
}

// kernelModules indexes a kernel's module files by canonical name.
type kernelModules struct {
	dir     string
	release string
	files   map[string]string // canonical name → path relative to dir
	builtin map[string]bool
}

func scanModules(modulesDir, release string) (*kernelModules, error) {
	km := &kernelModules{dir: modulesDir, release: release, files: map[string]string{}, builtin: map[string]bool{}}
	root := filepath.Join(modulesDir, "kernel")
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("initramfs: modules of kernel %s: %s is not a modules directory (no kernel/ inside)", release, modulesDir)
	}
	rank := map[string]int{} // by preference: the order of modinfo.Suffixes
	for i, s := range modinfo.Suffixes {
		rank[s] = i
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		suf := modinfo.Suffix(d.Name())
		if suf == "" {
			return nil
		}
		relPath, err := filepath.Rel(modulesDir, p)
		if err != nil {
			return err
		}
		name := modinfo.Canonical(d.Name())
		if old, ok := km.files[name]; ok && rank[modinfo.Suffix(old)] <= rank[suf] {
			return nil
		}
		km.files[name] = filepath.ToSlash(relPath)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("initramfs: modules of kernel %s: %w", release, err)
	}
	f, err := os.Open(filepath.Join(modulesDir, "modules.builtin"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No list: nothing is known to be built in.
	case err != nil:
		return nil, fmt.Errorf("initramfs: modules of kernel %s: %w", release, err)
	default:
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				km.builtin[modinfo.Canonical(line)] = true
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("initramfs: modules of kernel %s: read modules.builtin: %w", release, err)
		}
	}
	return km, nil
}

// resolveModules is Modules with an explicit release, and optional modules:
// a missing optional module is listed in the report instead of failing.
// The archive paths use release.
func resolveModules(modulesDir, release string, want []string, optional map[string]bool) ([]File, ModuleReport, error) {
	rep := ModuleReport{Release: release}
	km, err := scanModules(modulesDir, release)
	if err != nil {
		return nil, rep, err
	}
	var files []File
	state := map[string]int{} // 1: visiting, 2: done
	builtin := map[string]bool{}
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("initramfs: module dependency cycle for kernel %s: %s", release, strings.Join(append(chain, name), " -> "))
		}
		rel, ok := km.files[name]
		if !ok {
			if km.builtin[name] {
				state[name] = 2
				builtin[name] = true
				return nil
			}
			how := ""
			if len(chain) > 0 {
				how = " (needed by " + strings.Join(chain, " -> ") + ")"
			}
			return &NotFoundError{Module: name, Release: release, msg: fmt.Sprintf("module %s not found for kernel %s%s: neither a .ko under %s nor built in", name, release, how, filepath.Join(modulesDir, "kernel"))}
		}
		state[name] = 1
		data, err := readModule(filepath.Join(modulesDir, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("initramfs: module %s of kernel %s: %w", name, release, err)
		}
		info, err := modinfo.Parse(data)
		if err != nil {
			return fmt.Errorf("initramfs: module %s of kernel %s (%s): %w", name, release, rel, err)
		}
		if vm := strings.Fields(info["vermagic"]); len(vm) > 0 && vm[0] != release {
			return fmt.Errorf("initramfs: module %s (%s) was built for kernel %s, not %s", name, rel, vm[0], release)
		}
		for _, dep := range info.Depends() {
			if err := visit(dep, append(chain, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		plain := strings.TrimSuffix(rel, modinfo.Suffix(rel)) + ".ko"
		files = append(files, File{Path: path.Join("/lib/modules", release, plain), Kind: KindFile, Mode: 0o644, Data: data})
		rep.Order = append(rep.Order, name)
		return nil
	}
	for _, w := range want {
		name := modinfo.Canonical(w)
		if name == "" {
			return nil, rep, fmt.Errorf("initramfs: empty module name in %q", want)
		}
		if err := visit(name, nil); err != nil {
			var nf *NotFoundError
			if optional[name] && errors.As(err, &nf) {
				// The optional module or one of its dependencies is missing:
				// leave it out. Dependencies already resolved stay, they are
				// modules of this kernel.
				for n, st := range state {
					if st == 1 {
						delete(state, n)
					}
				}
				rep.Missing = append(rep.Missing, name)
				continue
			}
			return nil, rep, err
		}
	}
	for name := range builtin {
		rep.Builtin = append(rep.Builtin, name)
	}
	sort.Strings(rep.Builtin)
	return files, rep, nil
}

// readModule reads a module file, decompressing it by its suffix.
func readModule(p string) ([]byte, error) {
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var r io.Reader
	switch modinfo.Suffix(p) {
	case ".ko":
		return raw, nil
	case ".ko.xz":
		xr, err := xz.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("xz %s: %w", p, err)
		}
		r = xr
	case ".ko.zst":
		zr, err := zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd %s: %w", p, err)
		}
		defer zr.Close()
		r = zr
	case ".ko.gz":
		gr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("gzip %s: %w", p, err)
		}
		r = gr
	default:
		return nil, fmt.Errorf("%s is not a module file", p)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", p, err)
	}
	return data, nil
}
