// Package netns creates, finds and removes the named network namespaces the lab
// owns, and runs commands inside them. Named namespaces are bind mounts under
// /run/netns, exactly as `ip netns add` makes them, so `ip netns list` shows them.
package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dir is where named network namespaces are mounted.
const Dir = "/run/netns"

// Path returns the bind-mount path of the named namespace.
func Path(name string) string { return filepath.Join(Dir, name) }

// Exists reports whether a named namespace is mounted.
func Exists(name string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(Path(name), &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// Create makes a new named network namespace with its loopback device up. The
// calling goroutine's thread is returned to its original namespace.
func Create(name string) error {
	if Exists(name) {
		return fmt.Errorf("create netns %s: already exists", name)
	}
	if err := ensureSharedDir(); err != nil {
		return fmt.Errorf("create netns %s: %w", name, err)
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("create netns %s: current netns: %w", name, err)
	}
	defer orig.Close()
	created, err := netns.NewNamed(name)
	if err == nil {
		created.Close()
	}
	if serr := netns.Set(orig); serr != nil {
		// The thread is stuck in the wrong namespace: leave it locked so the
		// runtime destroys it with this goroutine.
		return fmt.Errorf("create netns %s: return to original netns: %w", name, serr)
	}
	runtime.UnlockOSThread()
	if err != nil {
		_ = Delete(name)
		return fmt.Errorf("create netns %s: %w", name, err)
	}
	return nil
}

// Delete unmounts and removes a named namespace. Deleting a missing namespace is
// not an error.
func Delete(name string) error {
	p := Path(name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete netns %s: unmount: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("delete netns %s: it is mounted beneath a later bind mount of %s (made by an 'ip netns' run before any lab); 'umount %s' and retry: %w", name, Dir, Dir, err)
		}
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

// ensureSharedDir makes Dir a shared bind mount of itself, as iproute2 does
// before its first 'ip netns add'. Namespaces mounted before that would be
// hidden beneath the bind mount a later 'ip netns add' makes, and could then
// be neither seen nor removed.
func ensureSharedDir() error {
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s shared: %w", Dir, err)
	}
	// Not a mount point yet: bind it onto itself, then share it.
	if err := unix.Mount(Dir, Dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", Dir, err)
	}
	if err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", Dir, err)
	}
	return nil
}

// List returns the names of mounted namespaces that start with prefix.
func List(prefix string) ([]string, error) {
	entries, err := os.ReadDir(Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list netns: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Do runs fn on a thread switched into the named namespace. Sockets fn opens
// belong to that namespace for their whole life.
func Do(name string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns %s: current netns: %w", name, err)
	}
	defer orig.Close()
	target, err := netns.GetFromPath(Path(name))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns %s: open: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns %s: enter: %w", name, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("netns %s: return to original netns: %w", name, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// Handle opens the named namespace; the caller closes it.
func Handle(name string) (netns.NsHandle, error) {
	h, err := netns.GetFromPath(Path(name))
	if err != nil {
		return h, fmt.Errorf("open netns %s: %w", name, err)
	}
	return h, nil
}

// ReleaseDir undoes ensureSharedDir when no namespace is left in Dir.
func ReleaseDir() error {
	names, err := List("")
	if err != nil || len(names) > 0 {
		return err
	}
	if err := unix.Unmount(Dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", Dir, err)
	}
	return nil
}
