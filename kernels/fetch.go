package kernels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/internal/outdir"
	"github.com/cnilab/cnilab/kernels/modinfo"
)

// Kernel is a kernel ready to boot: its image and modules on local disk.
type Kernel struct {
	Name    string // catalog name
	Release string // what uname -r prints under this kernel
	Vmlinuz string // absolute path of the kernel image (bzImage)
	// ModulesDir is the absolute .../lib/modules/<Release> directory, "" when
	// the kernel has no modules. Modules are as the source ships them (.ko,
	// .ko.xz, .ko.zst or .ko.gz), without a depmod run.
	ModulesDir string
	Source     Source // the catalog source it came from
	SHA256     string // hex sha256 of Vmlinuz

	// ConfigFile is the kernel's .config (boot/config-<Release>) when the
	// source ships one, else "".
	ConfigFile string
	// Dir is the cache directory holding the kernel ("" for local kernels).
	Dir string
	// Origin says what exactly was fetched: "package=version" (debian), the
	// image reference (oci) or the vmlinuz path (local).
	Origin string
	// OriginDigest is "sha256:<hex>" of the .deb (debian) or the image
	// manifest digest (oci); "" for local kernels.
	OriginDigest string
	// Cached is true when Fetch reused a verified cache instead of fetching.
	Cached bool
}

// ManifestFile is the name of the manifest Fetch writes into a kernel's cache
// directory.
const ManifestFile = "kernel.json"

// manifest is kernel.json: what was fetched and what the cache must hash to.
// Paths are relative to the cache directory, so the directory can move.
type manifest struct {
	Name          string    `json:"name"`
	Source        Source    `json:"source"`
	Release       string    `json:"release"`
	Vmlinuz       string    `json:"vmlinuz"`
	VmlinuzSHA256 string    `json:"vmlinuzSHA256"`
	Modules       string    `json:"modules,omitempty"`
	ModuleFiles   int       `json:"moduleFiles"` // regular files under Modules
	ModuleBytes   int64     `json:"moduleBytes"` // their total size
	Config        string    `json:"config,omitempty"`
	Origin        string    `json:"origin"`
	DebSHA256     string    `json:"debSHA256,omitempty"`
	ImageDigest   string    `json:"imageDigest,omitempty"`
	FetchedAt     time.Time `json:"fetchedAt"`
}

// DefaultCacheDir is <_output>/kernels (_output as outdir.Find locates it).
func DefaultCacheDir() string { return filepath.Join(outdir.Find(), "kernels") }

// Fetch makes the kernel of entry e available on local disk and returns it.
// Debian and OCI kernels are fetched into cacheDir/<name>/ (cacheDir ""
// means DefaultCacheDir), verified, and described by a kernel.json manifest;
// when that directory already holds the same source and its kernel image still
// hashes to the recorded sha256, it is reused without any network access. A
// cache that fails the check is fetched again. Local kernels are checked and
// used in place. Progress lines go to progress (nil: discarded). Concurrent
// fetches of one name wait for each other (a lock file in cacheDir).
func Fetch(ctx context.Context, e Entry, cacheDir string, progress io.Writer) (Kernel, error) {
	if err := e.Validate(); err != nil {
		return Kernel{}, err
	}
	if progress == nil {
		progress = io.Discard
	}
	if e.Source.Type == TypeLocal {
		k, err := useLocal(e)
		if err == nil {
			fmt.Fprintf(progress, "%s: local kernel %s, release %s\n", e.Name, k.Vmlinuz, k.Release)
		}
		return k, err
	}
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return Kernel{}, err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("kernel cache: %w", err)
	}
	unlock, err := lock(ctx, cacheDir, e.Name, progress)
	if err != nil {
		return Kernel{}, err
	}
	defer unlock()

	dir := filepath.Join(cacheDir, e.Name)
	k, err := CachedKernel(e, cacheDir)
	if err == nil {
		k.Cached = true
		fmt.Fprintf(progress, "%s: using verified cache %s (release %s)\n", e.Name, dir, k.Release)
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(progress, "%s: cache not usable, fetching again: %v\n", e.Name, err)
	}

	// Leftovers of fetches that were killed; the lock says none is running.
	if old, _ := filepath.Glob(filepath.Join(cacheDir, "."+e.Name+".tmp-*")); len(old) > 0 {
		for _, o := range old {
			_ = os.RemoveAll(o)
		}
	}
	tmp, err := os.MkdirTemp(cacheDir, "."+e.Name+".tmp-")
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed into place
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Kernel{}, err
	}

	start := time.Now()
	var m manifest
	switch e.Source.Type {
	case TypeDebian:
		m, err = fetchDebian(ctx, e, tmp, progress)
	case TypeOCI:
		m, err = fetchOCI(ctx, e, tmp, progress)
	}
	if err != nil {
		return Kernel{}, fmt.Errorf("fetching kernel %s: %w", e.Name, err)
	}
	m.Name, m.Source, m.FetchedAt = e.Name, e.Source, time.Now().UTC()
	if m.Modules != "" {
		if err := checkRelease(filepath.Join(tmp, m.Vmlinuz), m.Release); err != nil {
			return Kernel{}, fmt.Errorf("fetching kernel %s: %w", e.Name, err)
		}
	}
	if m.VmlinuzSHA256, err = fileSHA256(filepath.Join(tmp, m.Vmlinuz)); err != nil {
		return Kernel{}, err
	}
	if m.Modules != "" {
		if m.ModuleFiles, m.ModuleBytes, err = treeSize(filepath.Join(tmp, m.Modules)); err != nil {
			return Kernel{}, err
		}
	}
	if cfg := filepath.Join("boot", "config-"+m.Release); m.Config == "" && isRegular(filepath.Join(tmp, cfg)) {
		m.Config = cfg
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Kernel{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, ManifestFile), append(b, '\n'), 0o644); err != nil {
		return Kernel{}, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return Kernel{}, fmt.Errorf("replacing %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return Kernel{}, fmt.Errorf("kernel cache: %w", err)
	}
	fmt.Fprintf(progress, "%s: fetched release %s into %s in %s\n", e.Name, m.Release, dir, time.Since(start).Round(100*time.Millisecond))
	return m.kernel(dir), nil
}

// CachedKernel returns the kernel of entry e from cacheDir/<name>/ ("" means
// DefaultCacheDir) if it is there and verifies: the manifest names the same
// source, the kernel image hashes to the recorded sha256 and the modules
// directory holds as many bytes in as many files as when fetched. The error
// wraps fs.ErrNotExist when nothing is cached. For local kernels it checks the
// files as Fetch does.
func CachedKernel(e Entry, cacheDir string) (Kernel, error) {
	if e.Source.Type == TypeLocal {
		return useLocal(e)
	}
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return Kernel{}, err
	}
	dir := filepath.Join(cacheDir, e.Name)
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return Kernel{}, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Kernel{}, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	if m.Name != e.Name || m.Source != e.Source {
		return Kernel{}, fmt.Errorf("%s was fetched from %s, the catalog now says %s", dir, m.Source, e.Source)
	}
	if m.Release == "" || !localPath(m.Vmlinuz) || (m.Modules != "" && !localPath(m.Modules)) {
		return Kernel{}, fmt.Errorf("%s: incomplete manifest", filepath.Join(dir, ManifestFile))
	}
	sum, err := fileSHA256(filepath.Join(dir, m.Vmlinuz))
	if err != nil {
		return Kernel{}, fmt.Errorf("cached kernel image: %w", err)
	}
	if sum != m.VmlinuzSHA256 {
		return Kernel{}, fmt.Errorf("cached kernel image %s has sha256 %s, the manifest says %s", filepath.Join(dir, m.Vmlinuz), sum, m.VmlinuzSHA256)
	}
	if m.Modules != "" {
		files, size, err := treeSize(filepath.Join(dir, m.Modules))
		if err != nil {
			return Kernel{}, fmt.Errorf("cached modules: %w", err)
		}
		if files != m.ModuleFiles || size != m.ModuleBytes {
			return Kernel{}, fmt.Errorf("cached modules %s hold %d files, %d bytes; the manifest says %d files, %d bytes", filepath.Join(dir, m.Modules), files, size, m.ModuleFiles, m.ModuleBytes)
		}
	}
	return m.kernel(dir), nil
}

func (m manifest) kernel(dir string) Kernel {
	k := Kernel{
		Name: m.Name, Release: m.Release, Vmlinuz: filepath.Join(dir, m.Vmlinuz), Source: m.Source,
		SHA256: m.VmlinuzSHA256, Dir: dir, Origin: m.Origin,
	}
	if m.Modules != "" {
		k.ModulesDir = filepath.Join(dir, m.Modules)
	}
	if m.Config != "" {
		k.ConfigFile = filepath.Join(dir, m.Config)
	}
	switch {
	case m.DebSHA256 != "":
		k.OriginDigest = "sha256:" + m.DebSHA256
	case m.ImageDigest != "":
		k.OriginDigest = m.ImageDigest
	}
	return k
}

// lock takes an exclusive lock on cacheDir/.<name>.lock, waiting (while ctx
// lasts) for another process fetching the same kernel.
func lock(ctx context.Context, cacheDir, name string, progress io.Writer) (func(), error) {
	file := filepath.Join(cacheDir, "."+name+".lock")
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kernel cache lock: %w", err)
	}
	for waited := false; ; waited = true {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("kernel cache lock %s: %w", file, err)
		}
		if !waited {
			fmt.Fprintf(progress, "%s: waiting for another fetch of this kernel (lock %s)\n", name, file)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// findRelease finds the single lib/modules/<release> (or usr/lib/modules)
// directory under root and returns its path relative to root, or "" if root
// has no modules directory. In fetched content (strict) the modules directory
// must not be a symlink: it could point anywhere on this machine.
func findRelease(root string, strict bool) (release, modules string, err error) {
	for _, rel := range []string{"lib/modules", "usr/lib/modules"} {
		if st, err := os.Lstat(filepath.Join(root, rel)); strict && err == nil && st.Mode()&fs.ModeSymlink != 0 {
			return "", "", fmt.Errorf("%s is a symlink, not a directory", rel)
		}
		ents, err := os.ReadDir(filepath.Join(root, rel))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", "", err
		}
		var dirs []string
		for _, d := range ents {
			if d.IsDir() {
				dirs = append(dirs, d.Name())
			}
		}
		switch len(dirs) {
		case 0:
			continue
		case 1:
			if !releaseRE.MatchString(dirs[0]) {
				return "", "", fmt.Errorf("%s/%s does not look like a kernel release", rel, dirs[0])
			}
			return dirs[0], filepath.Join(rel, dirs[0]), nil
		default:
			return "", "", fmt.Errorf("%s holds several kernel releases (%s); expected one", rel, strings.Join(dirs, ", "))
		}
	}
	return "", "", nil
}

// releaseRE is what a kernel release (uname -r) looks like.
var releaseRE = regexp.MustCompile(`^[0-9]+\.[0-9]+[0-9A-Za-z.+_~-]*$`)

// checkRelease compares the release found in the modules directory with the
// one in the kernel image header, when the image has one.
func checkRelease(vmlinuz, release string) error {
	got, err := ReleaseFromBzImage(vmlinuz)
	if err != nil {
		return nil // not an x86 bzImage: nothing to compare
	}
	if got != release {
		return fmt.Errorf("kernel image %s is release %s but its modules are for %s", vmlinuz, got, release)
	}
	return nil
}

// ModuleFormats counts the kernel modules under dir by file suffix (one of
// modinfo.Suffixes: ".ko", ".ko.zst", ".ko.xz", ".ko.gz").
func ModuleFormats(dir string) (map[string]int, error) {
	counts := map[string]int{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			n := d.Name()
			if i := strings.Index(n, ".ko"); i >= 0 {
				if s := n[i:]; slices.Contains(modinfo.Suffixes, s) {
					counts[s]++
				}
			}
		}
		return nil
	})
	return counts, err
}

func fileSHA256(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", file, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// treeSize counts the regular files under dir and their bytes.
func treeSize(dir string) (files int, size int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			files++
			size += info.Size()
		}
		return nil
	})
	return files, size, err
}

func isRegular(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// localPath reports whether p is a relative path that stays inside its base.
func localPath(p string) bool { return p != "" && filepath.IsLocal(p) }
