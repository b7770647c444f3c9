package lab

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cnilab/cnilab/lab/config"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
	"github.com/cnilab/cnilab/lab/internal/proc"
	"github.com/cnilab/cnilab/lab/internal/realnode"
)

// HostLinks lists the network interfaces of this machine's own namespace,
// to compare before and after a lab with Leaks.
func HostLinks() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list host links: %w", err)
	}
	var out []string
	for _, i := range ifs {
		out = append(out, i.Name)
	}
	slices.Sort(out)
	return out, nil
}

// Leaks lists what a removed lab left on this machine: its network
// namespaces, mounts (bpffs and state bind mounts), processes, state
// directory, links in the host's namespace that were not in hostLinks
// (nil: not checked), pins in the host's bpffs, and real nodes' cgroups
// (with them, their containers and shims). name "" checks for
// every lab, which is right only when no lab should be up.
func Leaks(name string, hostLinks []string) ([]string, error) {
	var leaks []string
	prefix := config.NetnsPrefix
	if name != "" {
		prefix += name + "."
	}
	nss, err := labns.List(prefix)
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		leaks = append(leaks, "network namespace "+ns)
	}
	pids, err := proc.Tagged(name)
	if err != nil {
		return nil, err
	}
	for _, pid := range pids {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		leaks = append(leaks, fmt.Sprintf("process %d (%s)", pid, strings.ReplaceAll(strings.TrimSpace(string(cmd)), "\x00", " ")))
	}
	state := filepath.Join(stateDir(), name)
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		under := func(dir string) bool { return f[1] == dir || strings.HasPrefix(f[1], dir+"/") }
		if name != "" && under(state) || name == "" && under(stateDir()) && f[1] != stateDir() || strings.HasPrefix(f[1], filepath.Join(labns.Dir, prefix)) {
			leaks = append(leaks, fmt.Sprintf("mount %s (%s)", f[1], f[2]))
		}
	}
	if name != "" {
		if _, err := os.Stat(state); err == nil {
			leaks = append(leaks, "state directory "+state)
		}
	} else if entries, err := os.ReadDir(stateDir()); err == nil {
		for _, e := range entries {
			leaks = append(leaks, "state directory "+filepath.Join(stateDir(), e.Name()))
		}
	}
	if hostLinks != nil {
		now, err := HostLinks()
		if err != nil {
			return nil, err
		}
		for _, l := range now {
			if !slices.Contains(hostLinks, l) {
				leaks = append(leaks, "host link "+l)
			}
		}
	}
	// Real nodes' cgroups (the nodes', the kubelets' pods, containers),
	// in every hierarchy.
	cg := realnode.CgroupRoot
	if name != "" {
		cg = realnode.LabCgroup(name)
	}
	if dirs, err := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", cg, "*")); err == nil {
		for _, d := range dirs {
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				leaks = append(leaks, "cgroup "+d)
			}
		}
	}
	if pins, err := filepath.Glob("/sys/fs/bpf/cnilab*"); err == nil {
		for _, p := range pins {
			leaks = append(leaks, "bpffs pin "+p)
		}
	}
	return leaks, nil
}
