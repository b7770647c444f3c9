// Package modinfo reads what a Linux kernel module says about itself: the
// key=value fields of its ELF .modinfo section (depends, vermagic, alias…).
// It also spells module names the way the kernel does, so that a file name
// (net/bridge/bridge.ko.xz), a modules.builtin line and a depends= entry
// name the same module.
//
// It only parses bytes and names: it reads no files and loads nothing, so
// both the host side (which puts modules in a guest's initramfs) and the
// guest init (which loads them) can use it.
package modinfo

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Suffixes are the file name endings of kernel modules, in the order a
// module is best taken when a kernel ships it in more than one form: plain,
// then compressed with zstd, xz or gzip (the quickest to decompress first).
var Suffixes = []string{".ko", ".ko.zst", ".ko.xz", ".ko.gz"}

// Suffix returns the module suffix (one of Suffixes) that name ends with, or
// "" for a name that is not a module file's.
func Suffix(name string) string {
	for _, s := range Suffixes {
		if strings.HasSuffix(name, s) {
			return s
		}
	}
	return ""
}

// Canonical returns a module name as the kernel spells it: the directory is
// dropped, as is any module file suffix, and dashes become underscores.
func Canonical(name string) string {
	name = path.Base(name)
	name = strings.TrimSuffix(name, Suffix(name))
	return strings.ReplaceAll(name, "-", "_")
}

// Info is the content of a module's .modinfo section, by key. A key that
// appears more than once (alias, parm…) keeps its values joined by newlines.
type Info map[string]string

// Parse returns the .modinfo fields of a module, given the module file's
// plain (decompressed) ELF bytes.
func Parse(module []byte) (Info, error) {
	f, err := elf.NewFile(bytes.NewReader(module))
	if err != nil {
		return nil, fmt.Errorf("not an ELF module: %w", err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo: %w", err)
	}
	info := Info{}
	for _, field := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(field), "=")
		if !ok {
			continue
		}
		if old, dup := info[k]; dup {
			v = old + "\n" + v
		}
		info[k] = v
	}
	return info, nil
}

// Depends returns the modules named by the depends= field, canonical, in
// their order there; none for a module that depends on nothing.
func (i Info) Depends() []string {
	var deps []string
	for _, d := range strings.FieldsFunc(i["depends"], func(r rune) bool { return r == ',' || r == '\n' }) {
		if d = strings.TrimSpace(d); d != "" {
			deps = append(deps, Canonical(d))
		}
	}
	return deps
}
