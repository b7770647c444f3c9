package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const mountinfo = `22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 22 0:24 / /sys/fs/cgroup rw,relatime shared:9 - tmpfs tmpfs rw,mode=755
26 25 0:25 / /sys/fs/cgroup/cpuset rw,relatime shared:10 - cgroup cgroup rw,cpuset
27 25 0:26 / /sys/fs/cgroup/name\040odd rw,relatime shared:11 - cgroup cgroup rw,name=systemd
28 25 0:27 / /sys/fs/cgroup/unified rw,relatime shared:12 - cgroup2 cgroup2 rw,nsdelegate
29 1 0:28 / /mnt/cg rw,relatime - cgroup cgroup rw,memory
30 22 0:29 / /sys/fs/bpf rw,relatime shared:13 - bpf bpf rw,mode=700
`

func TestHierarchies(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mountinfo")
	if err := os.WriteFile(p, []byte(mountinfo), 0o644); err != nil {
		t.Fatal(err)
	}
	hs, err := Hierarchies(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Hierarchy{
		{Mount: "/sys/fs/cgroup/cpuset", FSType: "cgroup", Options: "cpuset"},
		{Mount: "/sys/fs/cgroup/name odd", FSType: "cgroup", Options: "name=systemd"},
		{Mount: "/sys/fs/cgroup/unified", FSType: "cgroup2", Options: "nsdelegate"},
	}
	if len(hs) != len(want) {
		t.Fatalf("Hierarchies = %+v, want %+v", hs, want)
	}
	for i := range want {
		if hs[i] != want[i] {
			t.Errorf("hierarchy %d = %+v, want %+v", i, hs[i], want[i])
		}
	}
	empty := filepath.Join(t.TempDir(), "mountinfo")
	_ = os.WriteFile(empty, []byte("22 1 0:21 / /sys rw - sysfs sysfs rw\n"), 0o644)
	if _, err := Hierarchies(empty); err == nil || !strings.Contains(err.Error(), "no cgroup") {
		t.Errorf("no hierarchy: %v", err)
	}
}

// TestCgroupTree runs Create, Join-free Procs and Remove on directories that
// stand in for hierarchies (no root needed): a cpuset level gets its
// parent's CPUs and memory nodes, and Remove takes the tree away deepest
// first.
func TestCgroupTree(t *testing.T) {
	root := t.TempDir()
	cpuset, mem := filepath.Join(root, "cpuset"), filepath.Join(root, "memory")
	for _, d := range []string{cpuset, mem} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.WriteFile(filepath.Join(cpuset, "cpuset.cpus"), []byte("0-1\n"), 0o644)
	_ = os.WriteFile(filepath.Join(cpuset, "cpuset.mems"), []byte("0\n"), 0o644)
	// A real cpuset cgroup is born with empty files; stand them in.
	for _, lvl := range []string{"cnilab", "cnilab/lab1", "cnilab/lab1/node-1"} {
		d := filepath.Join(cpuset, lvl)
		_ = os.MkdirAll(d, 0o755)
		_ = os.WriteFile(filepath.Join(d, "cpuset.cpus"), nil, 0o644)
		_ = os.WriteFile(filepath.Join(d, "cpuset.mems"), nil, 0o644)
	}
	cg := Cgroup{Hierarchies: []Hierarchy{{Mount: cpuset, FSType: "cgroup", Options: "cpuset"}, {Mount: mem, FSType: "cgroup", Options: "memory"}}, Path: "cnilab/lab1/node-1"}
	if err := cg.Create(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(cpuset, cg.Path, "cpuset.cpus")); string(got) != "0-1\n" {
		t.Errorf("cpuset.cpus of the node = %q, want the parent's", got)
	}
	if _, err := os.Stat(filepath.Join(mem, cg.Path)); err != nil {
		t.Errorf("memory cgroup not made: %v", err)
	}
	_ = os.MkdirAll(filepath.Join(mem, cg.Path, "kubepods", "besteffort"), 0o755)
	_ = os.WriteFile(filepath.Join(mem, cg.Path, "kubepods", "cgroup.procs"), []byte(""), 0o644)
	if p := cg.Procs(); len(p) != 0 {
		t.Errorf("Procs = %v, want none", p)
	}
	// Files in the stand-in directories keep os.Remove from succeeding
	// where a real cgroup's would; clear them first.
	_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			_ = os.Remove(p)
		}
		return nil
	})
	if err := (Cgroup{Hierarchies: cg.Hierarchies, Path: "cnilab/lab1"}).Remove(time.Second); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(cpuset, "cnilab/lab1"), filepath.Join(mem, "cnilab/lab1")} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", d, err)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	ok := Spec{Lab: "l", Node: "n", Dir: "/var/lib/x", Cgroup: "cnilab/l/n", LogDir: "/l", PidFile: "/p",
		Binds: []Bind{{Source: "var/lib/kubelet", Target: "/var/lib/kubelet"}}, Daemons: []Daemon{{Name: "containerd", Argv: []string{"/bin/containerd"}}}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	if got := ok.source(ok.Binds[0]); got != "/var/lib/x/var/lib/kubelet" {
		t.Errorf("relative bind source = %s", got)
	}
	for name, mutate := range map[string]func(*Spec){
		"no node":         func(s *Spec) { s.Node = "" },
		"relative dir":    func(s *Spec) { s.Dir = "x" },
		"escaping cgroup": func(s *Spec) { s.Cgroup = "../x" },
		"absolute cgroup": func(s *Spec) { s.Cgroup = "/x" },
		"relative target": func(s *Spec) { s.Binds = []Bind{{Source: "a", Target: "b"}} },
		"empty daemon":    func(s *Spec) { s.Daemons = []Daemon{{Name: "x"}} },
		"no pid file":     func(s *Spec) { s.PidFile = "" },
	} {
		s := ok
		mutate(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"PATH=/bin", "HOME=/root", "CNILAB_LAB=x"}, []string{"PATH=/tools:/bin", "EXTRA=1"})
	want := "HOME=/root CNILAB_LAB=x PATH=/tools:/bin EXTRA=1"
	if strings.Join(got, " ") != want {
		t.Errorf("mergeEnv = %v, want %s", got, want)
	}
}
