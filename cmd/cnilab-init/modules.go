package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/kernels/modinfo"
)

// modulesList names the modules to load, one a line, dependencies first.
const modulesList = "/etc/cnilab/modules"

// parseModulesList returns the module names of a modules list: one a line,
// blank lines and #-comments skipped.
func parseModulesList(b []byte) []string {
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			names = append(names, modinfo.Canonical(line))
		}
	}
	return names
}

// moduleOrder returns want and their dependencies (as deps reports them),
// each once, every module after its dependencies; the order of want is kept
// where the dependencies allow. A dependency cycle (which the kernel cannot
// load anyway) is broken rather than followed.
func moduleOrder(want []string, deps func(string) []string) []string {
	var order []string
	state := map[string]int{} // 1: visiting, 2: done
	var visit func(string)
	visit = func(name string) {
		if state[name] != 0 {
			return
		}
		state[name] = 1
		for _, d := range deps(name) {
			visit(modinfo.Canonical(d))
		}
		state[name] = 2
		order = append(order, name)
	}
	for _, w := range want {
		visit(modinfo.Canonical(w))
	}
	return order
}

// moduleFailure is a module that did not load.
type moduleFailure struct {
	name string
	err  error
}

// loadModules loads the modules of modulesList, and each one's dependencies
// first, from the plain .ko files under /lib/modules/<release>. A module the
// kernel already has (built in or loaded) is fine. It returns the modules it
// loaded and those that failed, after printing each failure.
func loadModules(release string) (loaded []string, failed []moduleFailure) {
	start := time.Now()
	list, err := os.ReadFile(modulesList)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			logf("modules: %v", err)
		}
		logf("modules: no %s, loading none", modulesList)
		return nil, nil
	}
	want := parseModulesList(list)
	dir := filepath.Join("/lib/modules", release)
	files := map[string]string{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".ko") {
			files[modinfo.Canonical(p)] = p
		}
		return nil
	})
	data := map[string][]byte{}
	readErr := map[string]error{}
	deps := func(name string) []string {
		p, ok := files[name]
		if !ok {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			readErr[name] = err
			return nil
		}
		data[name] = b
		info, err := modinfo.Parse(b)
		if err != nil {
			readErr[name] = err
			return nil
		}
		return info.Depends()
	}
	order := moduleOrder(want, deps)

	bad := map[string]bool{}
	var builtin []string
	for _, name := range order {
		err := loadModule(name, files, data, readErr, bad, deps)
		switch {
		case err == errBuiltin:
			builtin = append(builtin, name)
		case err != nil:
			bad[name] = true
			failed = append(failed, moduleFailure{name, err})
			logf("module %s: %v", name, err)
		default:
			loaded = append(loaded, name)
		}
	}
	logf("modules: %d loaded in %d ms: %s", len(loaded), time.Since(start).Milliseconds(), strings.Join(loaded, " "))
	if len(builtin) > 0 {
		logf("modules: already in the kernel: %s", strings.Join(builtin, " "))
	}
	if len(failed) > 0 {
		var names []string
		for _, f := range failed {
			names = append(names, f.name)
		}
		logf("modules: %d failed: %s", len(failed), strings.Join(names, " "))
	}
	return loaded, failed
}

// errBuiltin says a module needs no loading: the kernel has it already.
var errBuiltin = errors.New("already in the kernel")

func loadModule(name string, files map[string]string, data map[string][]byte, readErr map[string]error, bad map[string]bool, deps func(string) []string) error {
	if _, ok := files[name]; !ok {
		if _, err := os.Stat(filepath.Join("/sys/module", name)); err == nil {
			return errBuiltin
		}
		return fmt.Errorf("no %s.ko under /lib/modules and not in the kernel", name)
	}
	if err := readErr[name]; err != nil {
		return err
	}
	b, ok := data[name]
	if !ok {
		deps(name)
		if b, ok = data[name]; !ok {
			return fmt.Errorf("read %s: %v", files[name], readErr[name])
		}
	}
	info, _ := modinfo.Parse(b)
	for _, dep := range info.Depends() {
		if bad[dep] {
			return fmt.Errorf("not loaded: its dependency %s failed", dep)
		}
	}
	if err := unix.InitModule(b, ""); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return errBuiltin
		}
		return fmt.Errorf("init_module %s: %w", files[name], err)
	}
	return nil
}
