package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/lab/config"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
	"github.com/cnilab/cnilab/lab/internal/proc"
	"github.com/cnilab/cnilab/lab/internal/realnode"
)

// Delete removes everything of lab name: its processes (found by tag, so
// also those of a killed run), its namespaces (and with them every link in
// them), mounts under its state directory, and the state directory.
func (p Provider) Delete(name string) error {
	var errs []error
	if err := proc.StopAll(name, 2*time.Second); err != nil {
		errs = append(errs, err)
	}
	// Real nodes: containers and shims the sandboxes' ends did not take.
	if err := removeCgroups(realnode.LabCgroup(name)); err != nil {
		errs = append(errs, err)
	}
	prefix := config.NetnsPrefix + name + "."
	nss, err := labns.List(prefix)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range nss {
		if err := labns.Delete(ns); err != nil {
			errs = append(errs, err)
		}
	}
	dir := filepath.Join(p.StateDir, name)
	if err := unmountUnder(dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
	}
	return errors.Join(errs...)
}

// DeleteAll removes every lab on this machine, including what killed runs
// left without state.
func (p Provider) DeleteAll() error {
	var errs []error
	// First every tagged process, so that a killed run's loop cannot start
	// another lab while these are removed.
	if err := proc.StopAll("", 5*time.Second); err != nil {
		errs = append(errs, err)
	}
	names, err := p.List()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, n := range names {
		if err := p.Delete(n); err != nil {
			errs = append(errs, fmt.Errorf("lab %s: %w", n, err))
		}
	}
	// Processes tagged for a lab whose name we no longer know, and the
	// cgroups of real nodes of such labs.
	if err := proc.StopAll("", 5*time.Second); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroups(realnode.CgroupRoot); err != nil {
		errs = append(errs, err)
	}
	if err := labns.ReleaseDir(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func unmountUnder(dir string) error {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	var targets []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && (f[1] == dir || strings.HasPrefix(f[1], dir+"/")) {
			targets = append(targets, f[1])
		}
	}
	for i := len(targets) - 1; i >= 0; i-- {
		if err := unix.Unmount(targets[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", targets[i], err)
		}
	}
	return nil
}
