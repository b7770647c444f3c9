package kernels

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// useLocal checks a local kernel's files and returns it in place.
func useLocal(e Entry) (Kernel, error) {
	vmlinuz, err := expand(e.Source.Vmlinuz)
	if err != nil {
		return Kernel{}, fmt.Errorf("local kernel %s: vmlinuz: %w", e.Name, err)
	}
	modules, err := expand(e.Source.Modules)
	var env *EnvError
	if errors.As(err, &env) && len(env.Vars) == 1 && (e.Source.Modules == "${"+env.Vars[0]+"}" || e.Source.Modules == "$"+env.Vars[0]) {
		modules, err = "", nil // no modules
	}
	if err != nil {
		return Kernel{}, fmt.Errorf("local kernel %s: modules: %w", e.Name, err)
	}
	if vmlinuz, err = filepath.Abs(vmlinuz); err != nil {
		return Kernel{}, err
	}
	if !isRegular(vmlinuz) {
		return Kernel{}, fmt.Errorf("local kernel %s: %s is not a readable kernel image file", e.Name, vmlinuz)
	}
	k := Kernel{Name: e.Name, Vmlinuz: vmlinuz, Source: e.Source, Origin: vmlinuz}
	if modules != "" {
		if modules, err = filepath.Abs(modules); err != nil {
			return Kernel{}, err
		}
		st, err := os.Stat(modules)
		if err != nil || !st.IsDir() {
			return Kernel{}, fmt.Errorf("local kernel %s: modules directory %s does not exist", e.Name, modules)
		}
		if base := filepath.Base(modules); releaseRE.MatchString(base) {
			k.Release, k.ModulesDir = base, modules
		} else if rel, sub, err := findRelease(modules, false); err == nil && rel != "" {
			// modules names a root holding lib/modules/<release>.
			k.Release, k.ModulesDir = rel, filepath.Join(modules, sub)
		} else if ents, _ := os.ReadDir(modules); len(ents) > 0 {
			// modules names .../lib/modules itself: take its single release.
			var dirs []string
			for _, d := range ents {
				if d.IsDir() && releaseRE.MatchString(d.Name()) {
					dirs = append(dirs, d.Name())
				}
			}
			if len(dirs) != 1 {
				return Kernel{}, fmt.Errorf("local kernel %s: %s is not a lib/modules/<release> directory", e.Name, modules)
			}
			k.Release, k.ModulesDir = dirs[0], filepath.Join(modules, dirs[0])
		} else {
			return Kernel{}, fmt.Errorf("local kernel %s: %s is not a lib/modules/<release> directory", e.Name, modules)
		}
	}
	bz, bzErr := ReleaseFromBzImage(vmlinuz)
	switch {
	case k.Release == "" && bzErr != nil:
		return Kernel{}, fmt.Errorf("local kernel %s: no modules directory to name the release, and %v", e.Name, bzErr)
	case k.Release == "":
		k.Release = bz
	case bzErr == nil && bz != k.Release:
		return Kernel{}, fmt.Errorf("local kernel %s: kernel image %s is release %s but the modules are for %s", e.Name, vmlinuz, bz, k.Release)
	}
	if cfg := filepath.Join(filepath.Dir(vmlinuz), "config-"+k.Release); isRegular(cfg) {
		k.ConfigFile = cfg
	}
	if k.SHA256, err = fileSHA256(vmlinuz); err != nil {
		return Kernel{}, err
	}
	return k, nil
}

// EnvError is the error of a local kernel path that names environment
// variables which are not set.
type EnvError struct {
	Path string   // the path as the catalog writes it
	Vars []string // the unset variables
}

func (e *EnvError) Error() string {
	return fmt.Sprintf("%q needs %s set in the environment", e.Path, strings.Join(e.Vars, " and "))
}

// expand replaces ${VAR} and $VAR from the environment; an unset or empty
// variable is an *EnvError naming it, so a path never silently loses a part.
func expand(s string) (string, error) {
	var missing []string
	out := os.Expand(s, func(v string) string {
		val := os.Getenv(v)
		if val == "" {
			missing = append(missing, v)
		}
		return val
	})
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", &EnvError{Path: s, Vars: missing}
	}
	return out, nil
}

// ReleaseFromBzImage reads the kernel release (what uname -r prints) from the
// header of an x86 bzImage: the setup header (magic "HdrS" at 0x202) has at
// 0x20E a 16-bit pointer to a NUL-terminated version string, stored relative
// to offset 0x200, that starts with the release ("6.1.0-56-cloud-amd64
// (debian-kernel@...) #1 SMP ...").
func ReleaseFromBzImage(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	hdr := make([]byte, 0x210)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return "", fmt.Errorf("%s is not an x86 bzImage: %w", file, err)
	}
	if string(hdr[0x202:0x206]) != "HdrS" {
		return "", fmt.Errorf("%s is not an x86 bzImage (no HdrS setup header)", file)
	}
	if proto := binary.LittleEndian.Uint16(hdr[0x206:]); proto < 0x0200 {
		return "", fmt.Errorf("%s: boot protocol %#x has no kernel version field", file, proto)
	}
	ptr := binary.LittleEndian.Uint16(hdr[0x20E:])
	if ptr == 0 {
		return "", fmt.Errorf("%s: bzImage header has no kernel version string", file)
	}
	buf := make([]byte, 256)
	n, err := f.ReadAt(buf, int64(ptr)+0x200)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%s: reading the kernel version string: %w", file, err)
	}
	buf = buf[:n]
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	fields := strings.Fields(string(buf))
	if len(fields) == 0 || !releaseRE.MatchString(fields[0]) {
		return "", fmt.Errorf("%s: bzImage kernel version string %q does not start with a release", file, string(buf))
	}
	return fields[0], nil
}
