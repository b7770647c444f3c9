package kernels

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// DebPackage is one candidate package version as apt-cache show prints it.
type DebPackage struct {
	Name, Version, SHA256, Size, Filename string
}

// fetchDebian resolves the entry's package glob to the newest version apt
// knows, downloads that .deb into dir, checks its sha256 against the archive
// index and unpacks it into dir.
func fetchDebian(ctx context.Context, e Entry, dir string, progress io.Writer) (manifest, error) {
	pkg, err := ResolveDebian(ctx, e.Source.Package, progress)
	if err != nil {
		return manifest{}, err
	}
	fmt.Fprintf(progress, "%s: %s is %s version %s (%s bytes)\n", e.Name, e.Source.Package, pkg.Name, pkg.Version, pkg.Size)

	// apt-get download checks the .deb against the signed archive index.
	args := []string{"download", "-q"}
	if os.Geteuid() == 0 {
		// apt drops to _apt for downloads, which cannot write into a
		// root-owned cache directory; it would fall back to root with a warning.
		args = append(args, "-o", "APT::Sandbox::User=root")
	}
	args = append(args, pkg.Name+"="+pkg.Version)
	if _, err := command(ctx, dir, progress, "apt-get", args...); err != nil {
		return manifest{}, err
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		return manifest{}, fmt.Errorf("apt-get download %s=%s left %d .deb files in %s, expected 1", pkg.Name, pkg.Version, len(debs), dir)
	}
	sum, err := fileSHA256(debs[0])
	if err != nil {
		return manifest{}, err
	}
	if !strings.EqualFold(sum, pkg.SHA256) {
		return manifest{}, fmt.Errorf("%s has sha256 %s, the archive index says %s", filepath.Base(debs[0]), sum, pkg.SHA256)
	}
	fmt.Fprintf(progress, "%s: %s sha256 %s matches the archive index; unpacking\n", e.Name, filepath.Base(debs[0]), sum)
	if _, err := command(ctx, dir, nil, "dpkg", "-x", debs[0], dir); err != nil {
		return manifest{}, err
	}
	if err := os.Remove(debs[0]); err != nil {
		return manifest{}, err
	}

	release, modules, err := findRelease(dir, true)
	if err != nil {
		return manifest{}, fmt.Errorf("package %s: %w", pkg.Name, err)
	}
	if release == "" {
		return manifest{}, fmt.Errorf("package %s has no lib/modules/<release> directory", pkg.Name)
	}
	vmlinuz := filepath.Join("boot", "vmlinuz-"+release)
	if !isRegular(filepath.Join(dir, vmlinuz)) {
		return manifest{}, fmt.Errorf("package %s has modules for %s but no %s", pkg.Name, release, vmlinuz)
	}
	return manifest{
		Release: release, Vmlinuz: vmlinuz, Modules: modules,
		Origin: pkg.Name + "=" + pkg.Version, DebSHA256: strings.ToLower(sum),
	}, nil
}

// ResolveDebian finds the packages whose names match glob ('*' matches
// anything) with apt-cache search, and returns the one whose candidate
// version is the highest (Debian version order). When apt-cache knows no
// match it runs apt-get update once and searches again.
func ResolveDebian(ctx context.Context, glob string, progress io.Writer) (DebPackage, error) {
	if progress == nil {
		progress = io.Discard
	}
	if _, err := exec.LookPath("apt-cache"); err != nil {
		return DebPackage{}, fmt.Errorf("apt-cache not found: Debian kernels need apt (a Debian or Ubuntu machine); use an oci or local kernel instead")
	}
	re := GlobRegexp(glob)
	names, err := aptSearch(ctx, glob, re)
	if err != nil {
		return DebPackage{}, err
	}
	if len(names) == 0 {
		fmt.Fprintf(progress, "apt-cache knows no package matching %s; running apt-get update\n", glob)
		if _, err := command(ctx, "", progress, "apt-get", "update", "-q"); err != nil {
			return DebPackage{}, fmt.Errorf("apt-get update (needs root): %w", err)
		}
		if names, err = aptSearch(ctx, glob, re); err != nil {
			return DebPackage{}, err
		}
	}
	if len(names) == 0 {
		return DebPackage{}, fmt.Errorf("no Debian package matches %s (apt-cache search --names-only '%s' finds nothing, even after apt-get update): check that the apt sources have the suite that ships it", glob, re)
	}
	out, err := command(ctx, "", nil, "apt-cache", append([]string{"show", "--no-all-versions"}, names...)...)
	if err != nil {
		return DebPackage{}, err
	}
	pkgs := parseAptShow(out)
	var best DebPackage
	for _, p := range pkgs {
		if p.Version == "" || p.SHA256 == "" {
			continue
		}
		if best.Name == "" {
			best = p
			continue
		}
		c := CompareVersions(p.Version, best.Version)
		if c > 0 || (c == 0 && CompareVersions(p.Name, best.Name) > 0) {
			best = p
		}
	}
	if best.Name == "" {
		return DebPackage{}, fmt.Errorf("apt-cache show has no installable version with a SHA256 for %s", strings.Join(names, ", "))
	}
	return best, nil
}

// GlobRegexp turns a package name glob into the anchored regular expression
// apt-cache search --names-only takes: '*' becomes '.*', the rest is literal.
func GlobRegexp(glob string) string {
	parts := strings.Split(glob, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return "^" + strings.Join(parts, ".*") + "$"
}

func aptSearch(ctx context.Context, glob, re string) ([]string, error) {
	out, err := command(ctx, "", nil, "apt-cache", "search", "--names-only", re)
	if err != nil {
		return nil, err
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		n, _, _ := strings.Cut(sc.Text(), " - ")
		n = strings.TrimSpace(n)
		if ok, _ := path.Match(glob, n); ok {
			names = append(names, n)
		}
	}
	return names, sc.Err()
}

// parseAptShow reads the deb822 records apt-cache show prints.
func parseAptShow(out []byte) []DebPackage {
	var pkgs []DebPackage
	var cur DebPackage
	flush := func() {
		if cur.Name != "" {
			pkgs = append(pkgs, cur)
		}
		cur = DebPackage{}
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a multi-line field
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			cur.Name = v
		case "Version":
			cur.Version = v
		case "SHA256":
			cur.SHA256 = v
		case "Size":
			cur.Size = v
		case "Filename":
			cur.Filename = v
		}
	}
	flush()
	return pkgs
}

// command runs a program in dir and returns its standard output. With a
// progress writer both outputs stream there; otherwise standard error is kept
// for the error message.
func command(ctx context.Context, dir string, progress io.Writer, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if progress != nil {
		cmd.Stdout = io.MultiWriter(&stdout, progress)
		cmd.Stderr = io.MultiWriter(&stderr, progress)
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		var ee *exec.ExitError
		if msg != "" && errors.As(err, &ee) {
			return nil, fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), msg)
		}
		return nil, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return stdout.Bytes(), nil
}
