package loader

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ensureBPFFS makes dir and mounts a bpffs on it unless it already is on one.
func ensureBPFFS(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pin path: %w", err)
	}
	onBPFFS, err := isBPFFS(dir)
	if err != nil {
		return err
	}
	if onBPFFS {
		return nil
	}
	if err := unix.Mount("bpffs", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs on %s: %w", dir, err)
	}
	return nil
}

func isBPFFS(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Type == unix.BPF_FS_MAGIC, nil
}
