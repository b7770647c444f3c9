package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// defaultInstallDir is where the DaemonSet mounts the host's /opt/cni/bin.
const defaultInstallDir = "/host/opt/cni/bin"

// installRequested reports whether the process was started as
// `cnilab-cni install [DIR]` rather than by a container runtime, which
// always sets CNI_COMMAND (and ignores the arguments).
func installRequested(args []string) bool {
	_, underRuntime := os.LookupEnv("CNI_COMMAND")
	return len(args) > 1 && args[1] == "install" && !underRuntime
}

// runInstall is `cnilab-cni install [DIR]`; it returns the exit code.
func runInstall(args []string, stdout, stderr io.Writer) int {
	if len(args) > 1 {
		fmt.Fprintf(stderr, "usage: cnilab-cni install [DIR]  (DIR defaults to %s)\n", defaultInstallDir)
		return 2
	}
	dir := defaultInstallDir
	if len(args) == 1 {
		dir = args[0]
	}
	self, err := executable()
	if err != nil {
		fmt.Fprintf(stderr, "cnilab-cni install: %v\n", err)
		return 1
	}
	dst, err := installPlugin(self, dir)
	if err != nil {
		fmt.Fprintf(stderr, "cnilab-cni install: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "cnilab-cni install: installed %s (version %s)\n", dst, version)
	return 0
}

// executable is the path of the running program: /proc/self/exe, or
// without /proc (a chroot) argv[0] when it is absolute, as in the DaemonSet.
func executable() (string, error) {
	p, err := os.Executable()
	if err != nil && filepath.IsAbs(os.Args[0]) {
		return os.Args[0], nil
	}
	return p, err
}

// installPlugin copies the file src to dir/cnilab-cni, mode 0755, making dir
// if needed. The copy goes to a temporary file in dir that is then renamed
// over the target, so a runtime that runs the plugin meanwhile executes the
// old binary or the new one, never part of one.
func installPlugin(src, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create the plugin directory: %w", err)
	}
	dst := filepath.Join(dir, "cnilab-cni")
	tmp, err := os.CreateTemp(dir, ".cnilab-cni.tmp-")
	if err != nil {
		return "", fmt.Errorf("install into %s: %w", dir, err)
	}
	err = writeExecutable(tmp, src)
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		return "", errors.Join(fmt.Errorf("install %s: %w", dst, err), removeIfExists(tmp.Name()))
	}
	return dst, nil
}

// writeExecutable fills f with the content of src, makes it mode 0755,
// flushes it to disk and closes it.
func writeExecutable(f *os.File, src string) error {
	in, err := os.Open(src)
	if err != nil {
		f.Close()
		return err
	}
	defer in.Close()
	_, err = io.Copy(f, in)
	if err == nil {
		err = f.Chmod(0o755)
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

func removeIfExists(name string) error {
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the temporary file: %w", err)
	}
	return nil
}
