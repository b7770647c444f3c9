package initramfs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// HostProgram is a dynamically linked program of this machine that a guest
// needs (flanneld runs iptables): it is copied with every shared library the
// dynamic linker resolves for it, at the same paths.
type HostProgram struct {
	// Path is the host path; symlinks are followed to the real file.
	Path string
	// Names are the guest paths that point at it (multi-call binaries such as
	// xtables-nft-multi choose what to be by their name).
	Names []string
	// PluginDirs are host directories of shared objects the program loads at
	// run time (iptables' extensions); they are copied whole, with their
	// libraries.
	PluginDirs []string
}

// NetfilterModules are the modules iptables-nft needs for flannel's forward
// and masquerade rules and for kube-proxy's Service rules (DNAT, random
// backend choice, session affinity, reject). They are optional: a kernel
// without them still runs cnilab, and flanneld or kube-proxy then says what
// failed.
var NetfilterModules = []string{
	"br_netfilter", "nf_tables", "nft_compat", "nft_chain_nat", "xt_comment", "xt_mark",
	"xt_MASQUERADE", "xt_conntrack", "xt_addrtype", "xt_nat", "xt_statistic", "xt_recent",
	"xt_tcpudp", "nft_reject_ipv4", "ipt_REJECT",
}

// IptablesProgram is Debian's iptables (nf_tables flavour) as flanneld runs it.
func IptablesProgram() (HostProgram, error) {
	multi, err := filepath.EvalSymlinks("/usr/sbin/xtables-nft-multi")
	if err != nil {
		return HostProgram{}, fmt.Errorf("iptables for the guests: %w (apt-get install iptables)", err)
	}
	var names []string
	for _, n := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore", "iptables-nft", "ip6tables-nft"} {
		names = append(names, "/usr/sbin/"+n)
	}
	var plugins []string
	for _, d := range []string{"/usr/lib/x86_64-linux-gnu/xtables", "/usr/lib/xtables"} {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			plugins = append(plugins, d)
		}
	}
	return HostProgram{Path: multi, Names: names, PluginDirs: plugins}, nil
}

// hostProgramFiles returns the files that put p into a guest.
func hostProgramFiles(p HostProgram) ([]File, error) {
	real, err := filepath.EvalSymlinks(p.Path)
	if err != nil {
		return nil, fmt.Errorf("host program %s: %w", p.Path, err)
	}
	objects := []string{real}
	var links []File
	for _, d := range p.PluginDirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("host program %s: plugins: %w", p.Path, err)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".so") {
				continue
			}
			switch {
			case e.Type().IsRegular():
				objects = append(objects, filepath.Join(d, e.Name()))
			case e.Type()&os.ModeSymlink != 0:
				// Aliases (libxt_MASQUERADE.so -> libxt_NAT.so) stay links.
				target, err := os.Readlink(filepath.Join(d, e.Name()))
				if err != nil {
					return nil, fmt.Errorf("host program %s: plugins: %w", p.Path, err)
				}
				links = append(links, File{Path: filepath.Join(d, e.Name()), Kind: KindSymlink, Target: target})
			}
		}
	}
	seen := map[string]bool{}
	var files []File
	add := func(hostPath string, mode os.FileMode) {
		if seen[hostPath] {
			return
		}
		seen[hostPath] = true
		files = append(files, File{Path: hostPath, Kind: KindFile, Mode: mode, Source: hostPath})
	}
	for _, o := range objects {
		add(o, 0o755)
		libs, err := sharedLibraries(o)
		if err != nil {
			return nil, fmt.Errorf("host program %s: %w", p.Path, err)
		}
		for _, l := range libs {
			// The guest has the same paths: the loader's and the
			// libraries' (their symlinks resolved to the real files, under
			// the name the program asks for).
			add(l, 0o755)
		}
	}
	for _, n := range p.Names {
		files = append(files, File{Path: n, Kind: KindSymlink, Target: real})
	}
	files = append(files, links...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// sharedLibraries asks the dynamic linker (ldd) which libraries an object
// loads, and returns their paths (the interpreter included).
func sharedLibraries(object string) ([]string, error) {
	out, err := exec.Command("ldd", object).Output()
	if err != nil {
		if bytes.Contains(out, []byte("not a dynamic executable")) {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w", object, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[1] == "=>" && path.IsAbs(f[2]):
			libs = append(libs, f[2])
		case len(f) >= 1 && path.IsAbs(f[0]):
			libs = append(libs, f[0])
		case len(f) >= 3 && f[1] == "=>" && f[2] == "not":
			return nil, fmt.Errorf("%s: library %s not found", object, f[0])
		}
	}
	return libs, sc.Err()
}
