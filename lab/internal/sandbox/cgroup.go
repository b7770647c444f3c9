package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Hierarchy is one mounted cgroup hierarchy of this machine: a v1
// controller (or a named v1 hierarchy such as name=systemd) or the v2
// unified tree.
type Hierarchy struct {
	// Mount is where it is mounted, e.g. /sys/fs/cgroup/memory.
	Mount string
	// FSType is "cgroup" (v1) or "cgroup2".
	FSType string
	// Options are the mount's super options (the controllers of a v1
	// hierarchy, name=…), as the node mounts it again.
	Options string
}

// Hierarchies lists the cgroup hierarchies mounted under /sys/fs/cgroup, read
// from mountinfo (the format of proc(5)).
func Hierarchies(mountinfo string) ([]Hierarchy, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("cgroup hierarchies: %w", err)
	}
	defer f.Close()
	var out []Hierarchy
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		h, ok := parseMountinfoLine(s.Text())
		if ok && strings.HasPrefix(h.Mount, "/sys/fs/cgroup") {
			out = append(out, h)
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("cgroup hierarchies: read %s: %w", mountinfo, err)
	}
	if len(out) == 0 {
		return nil, errors.New("cgroup hierarchies: no cgroup or cgroup2 file system is mounted under /sys/fs/cgroup")
	}
	return out, nil
}

// parseMountinfoLine reads "ID PARENT MAJ:MIN ROOT MOUNT OPTS [TAGS...] - FSTYPE SOURCE SUPEROPTS".
func parseMountinfoLine(line string) (Hierarchy, bool) {
	fields := strings.Fields(line)
	sep := slices.Index(fields, "-")
	if sep < 6 || len(fields) < sep+4 {
		return Hierarchy{}, false
	}
	fstype := fields[sep+1]
	if fstype != "cgroup" && fstype != "cgroup2" {
		return Hierarchy{}, false
	}
	var opts []string
	for _, o := range strings.Split(fields[sep+3], ",") {
		if o != "rw" && o != "ro" {
			opts = append(opts, o)
		}
	}
	return Hierarchy{Mount: unescapeMount(fields[4]), FSType: fstype, Options: strings.Join(opts, ",")}, true
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space …).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Cgroup is one node's cgroup, the same relative path in every hierarchy;
// the node's cgroup namespace makes it the node's root.
type Cgroup struct {
	Hierarchies []Hierarchy
	// Path is relative to each hierarchy's root, e.g. cnilab/LAB/NODE.
	Path string
}

// Create makes the cgroup in every hierarchy. A v1 cpuset cgroup starts with
// no CPUs and no memory nodes, and a process cannot join it until they are
// set: every new level copies its parent's.
func (c Cgroup) Create() error {
	for _, h := range c.Hierarchies {
		dir := h.Mount
		for _, part := range strings.Split(c.Path, "/") {
			parent := dir
			dir = filepath.Join(dir, part)
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("cgroup %s: %w", dir, err)
			}
			if h.FSType == "cgroup" && strings.Contains(","+h.Options+",", ",cpuset,") {
				for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
					if err := copyIfEmpty(filepath.Join(parent, f), filepath.Join(dir, f)); err != nil {
						return fmt.Errorf("cgroup %s: %w", dir, err)
					}
				}
			}
		}
	}
	return nil
}

func copyIfEmpty(from, to string) error {
	cur, err := os.ReadFile(to)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(cur)) != "" {
		return nil
	}
	v, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, v, 0o644)
}

// Join moves the process pid into the cgroup in every hierarchy.
func (c Cgroup) Join(pid int) error {
	for _, h := range c.Hierarchies {
		p := filepath.Join(h.Mount, c.Path, "cgroup.procs")
		if err := os.WriteFile(p, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("join cgroup %s: %w", p, err)
		}
	}
	return nil
}

// Procs lists every process in the cgroup and its descendants, in any
// hierarchy.
func (c Cgroup) Procs() []int {
	seen := map[int]bool{}
	for _, h := range c.Hierarchies {
		_ = filepath.WalkDir(filepath.Join(h.Mount, c.Path), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					seen[pid] = true
				}
			}
			return nil
		})
	}
	out := make([]int, 0, len(seen))
	for pid := range seen {
		out = append(out, pid)
	}
	slices.Sort(out)
	return out
}

// Remove kills every process left in the cgroup (SIGKILL), waits up to
// timeout for them to go, and removes the cgroup and every cgroup below it,
// deepest first, in every hierarchy. A missing cgroup is not an error.
func (c Cgroup) Remove(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		procs := c.Procs()
		if len(procs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s: processes %v did not exit", c.Path, procs)
		}
		for _, pid := range procs {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var errs []error
	for _, h := range c.Hierarchies {
		root := filepath.Join(h.Mount, c.Path)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}
