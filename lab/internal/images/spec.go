package images

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Spec is one image.
type Spec struct {
	// Name is the short name: the tarball is Name+".tar", and
	// `cnilab images build --only` takes it.
	Name string
	// Reference is the name the manifests and kubelets ask for, such as
	// registry.k8s.io/pause:3.10.2; Aliases are further names of the same
	// image.
	Reference string
	Aliases   []string
	// The image configuration. Env is added to the default PATH.
	Entrypoint, Cmd []string
	User            string
	WorkingDir      string
	Env             []string
	ExposedPorts    []string // "80/tcp"
	// Files are the image's own files; Host are files of this machine
	// copied at the same path. Every ELF file of the image, wherever it
	// comes from, brings the shared objects the dynamic loader would load
	// for it.
	Files []File
	Host  []HostPath
}

// HostPath is a path of this machine copied at the same path into an image:
// a file, or a directory with everything below it, and every symbolic link
// met on the way (so /lib/x86_64-linux-gnu/libc.so.6 brings the /lib link
// of a merged-/usr system and /usr/lib/x86_64-linux-gnu/libc.so.6).
type HostPath struct {
	Path     string
	Package  string // the Debian package that installs it, for the error message
	Optional bool   // skipped when absent
}

// File is one member of an image: exactly one of Source, Data, Link or Dir.
type File struct {
	Path   string // absolute, in the image
	Source string // a file on this machine whose content is copied
	// Make is how to produce a missing Source, for the error message
	// ("make build", "make tools").
	Make string
	Data []byte // generated content
	Link string // the target of a symbolic link
	Dir  bool   // a directory
	// Mode is the permission bits; 0 means 0755 for Source files and
	// directories, 0644 for Data.
	Mode fs.FileMode
	// Xattrs are extended attributes, such as security.capability.
	Xattrs map[string]string
}

// DefaultPath is the PATH of every image.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// validate checks a spec's own fields (not its inputs).
func (s Spec) validate() error {
	if s.Name == "" || strings.ContainsAny(s.Name, "/ \t\n,") {
		return fmt.Errorf("image name %q: want a short name without '/', ',' or spaces", s.Name)
	}
	if _, err := s.tags(); err != nil {
		return err
	}
	for _, f := range s.Files {
		if err := f.validate(); err != nil {
			return fmt.Errorf("image %s: %w", s.Name, err)
		}
	}
	return nil
}

func (f File) validate() error {
	if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
		return fmt.Errorf("file %q: want a clean absolute path below /", f.Path)
	}
	kinds := 0
	for _, set := range []bool{f.Source != "", f.Data != nil, f.Link != "", f.Dir} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return fmt.Errorf("file %s: want exactly one of a source, data, a link target or a directory", f.Path)
	}
	return nil
}
