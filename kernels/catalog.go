// Package kernels is the kernel catalog of the lab (which kernels the suite
// boots and where each comes from) and the code that fetches a kernel image
// and its modules into a verified local cache.
//
// A catalog entry has a source of one of three types:
//
//   - debian: the newest Debian package matching a name glob, resolved with
//     apt-cache, downloaded with apt-get (which checks the archive signatures),
//     hash-checked against the archive index and unpacked with dpkg -x;
//   - oci: an image in the ghcr.io/cilium/ci-kernels layout (/boot/vmlinuz and
//     /lib/modules/RELEASE), from a registry or from a local OCI image layout
//     (oci-layout:PATH[:TAG]); manifest, config and layers are checked against
//     their digests;
//   - local: a vmlinuz and modules directory already on disk, used in place.
//
// Fetched kernels live in CACHE/NAME/ with a kernel.json manifest; a later
// Fetch re-hashes the kernel image and reuses the cache only when it matches.
// Modules are left as the source ships them (.ko, .ko.xz, .ko.zst, .ko.gz).
package kernels

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Source types.
const (
	TypeDebian = "debian"
	TypeOCI    = "oci"
	TypeLocal  = "local"
)

// LayoutPrefix starts an OCI image reference that names a local OCI image
// layout directory instead of a registry: oci-layout:PATH[:TAG].
const LayoutPrefix = "oci-layout:"

// Source says where a kernel comes from. Which fields apply depends on Type.
type Source struct {
	Type string `json:"type"` // TypeDebian, TypeOCI or TypeLocal
	// Package (debian) is a package name glob ('*' matches anything); the
	// newest version among the matching packages is fetched.
	Package string `json:"package,omitempty"`
	// Image (oci) is a registry reference (ghcr.io/cilium/ci-kernels:6.6) or
	// oci-layout:PATH[:TAG] for a local OCI image layout.
	Image string `json:"image,omitempty"`
	// Vmlinuz and Modules (local) are the kernel image and its
	// .../lib/modules/RELEASE directory. ${VAR} is expanded from the
	// environment when the kernel is used, and an unset variable is an error,
	// except that Modules may be empty or exactly one unset ${VAR}: a kernel
	// without modules.
	Vmlinuz string `json:"vmlinuz,omitempty"`
	Modules string `json:"modules,omitempty"`
}

// String is a one-line description of the source.
func (s Source) String() string {
	switch s.Type {
	case TypeDebian:
		return "debian " + s.Package
	case TypeOCI:
		return "oci " + s.Image
	case TypeLocal:
		if s.Modules == "" {
			return "local " + s.Vmlinuz
		}
		return "local " + s.Vmlinuz + " " + s.Modules
	}
	return s.Type
}

// Entry is one kernel of the catalog.
type Entry struct {
	Name   string `json:"name"`
	Source Source `json:"source"`
	// Note says what to expect of the kernel, e.g. "no TCX (6.6+)".
	Note string `json:"note,omitempty"`
}

// Catalog is the list of kernels the lab knows, in catalog order.
type Catalog []Entry

//go:embed catalog.json
var embedded []byte

// Load returns the catalog built into the binary (kernels/catalog.json).
func Load() (Catalog, error) {
	c, err := Parse(embedded)
	if err != nil {
		return nil, fmt.Errorf("built-in kernel catalog: %w", err)
	}
	return c, nil
}

// LoadFile reads and validates a catalog file in the format of
// kernels/catalog.json.
func LoadFile(file string) (Catalog, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading kernel catalog: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("kernel catalog %s: %w", file, err)
	}
	return c, nil
}

// Parse decodes a catalog (a JSON list of entries) and validates it; unknown
// fields are errors so a typo does not silently drop a setting.
func Parse(b []byte) (Catalog, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var c Catalog
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("parsing: data after the list of kernels")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks every entry and that names are unique.
func (c Catalog) Validate() error {
	if len(c) == 0 {
		return fmt.Errorf("no kernels")
	}
	seen := map[string]bool{}
	for i, e := range c {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("entry %d: %w", i+1, err)
		}
		if seen[e.Name] {
			return fmt.Errorf("entry %d: kernel %q is listed twice", i+1, e.Name)
		}
		seen[e.Name] = true
	}
	return nil
}

// Names lists the kernel names in catalog order.
func (c Catalog) Names() []string {
	names := make([]string, len(c))
	for i, e := range c {
		names[i] = e.Name
	}
	return names
}

// Find returns the entry called name; the error lists the known names.
func (c Catalog) Find(name string) (Entry, error) {
	for _, e := range c {
		if e.Name == name {
			return e, nil
		}
	}
	hint := ""
	for _, e := range c {
		if strings.TrimPrefix(e.Name, "ci-") == strings.TrimPrefix(name, "ci-") {
			hint = fmt.Sprintf(" (did you mean %s?)", e.Name)
			break
		}
	}
	return Entry{}, fmt.Errorf("unknown kernel %q%s: known kernels are %s", name, hint, strings.Join(c.Names(), ", "))
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	packageRE = regexp.MustCompile(`^[a-z0-9*][a-z0-9.+*-]+$`)
)

// Validate checks the entry's name and that its source has exactly the fields
// its type needs.
func (e Entry) Validate() error {
	if !nameRE.MatchString(e.Name) || strings.Contains(e.Name, "..") {
		return fmt.Errorf("invalid kernel name %q: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit", e.Name)
	}
	s := e.Source
	bad := func(format string, args ...any) error {
		return fmt.Errorf("kernel %s: %s", e.Name, fmt.Sprintf(format, args...))
	}
	switch s.Type {
	case TypeDebian:
		if !packageRE.MatchString(s.Package) {
			return bad("debian source needs a package name glob of lowercase letters, digits, '.', '+', '-' and '*' (got %q)", s.Package)
		}
		if s.Image != "" || s.Vmlinuz != "" || s.Modules != "" {
			return bad("a debian source has only a package")
		}
	case TypeOCI:
		if s.Image == "" {
			return bad("oci source needs an image")
		}
		if p, _, ok := parseLayoutRef(s.Image); ok {
			if p == "" {
				return bad("image %q: oci-layout: needs a directory", s.Image)
			}
		} else if _, err := name.ParseReference(s.Image); err != nil {
			return bad("image %q: %v", s.Image, err)
		}
		if s.Package != "" || s.Vmlinuz != "" || s.Modules != "" {
			return bad("an oci source has only an image")
		}
	case TypeLocal:
		if s.Vmlinuz == "" {
			return bad("local source needs a vmlinuz path")
		}
		if s.Package != "" || s.Image != "" {
			return bad("a local source has only vmlinuz and modules")
		}
	default:
		return bad("unknown source type %q: use %s, %s or %s", s.Type, TypeDebian, TypeOCI, TypeLocal)
	}
	return nil
}

// parseLayoutRef splits oci-layout:PATH[:TAG]. The tag is what follows the
// last ':' when that part has no '/'.
func parseLayoutRef(ref string) (dir, tag string, ok bool) {
	rest, ok := strings.CutPrefix(ref, LayoutPrefix)
	if !ok {
		return "", "", false
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[i+1:], "/") {
		return rest[:i], rest[i+1:], true
	}
	return rest, "", true
}
