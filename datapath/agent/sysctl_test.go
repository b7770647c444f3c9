package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeProcSys points procSys at a directory holding net/ipv4/ip_forward
// with value (none if value is ""), and records the writes; failWrite makes
// them fail as on a read-only /proc/sys.
func fakeProcSys(t *testing.T, value string, failWrite bool) *[]string {
	t.Helper()
	root := t.TempDir()
	p := filepath.Join(root, "net", "ipv4", "ip_forward")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if value != "" {
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var writes []string
	origRoot, origWrite := procSys, writeSysctl
	procSys = root
	writeSysctl = func(path, v string) error {
		writes = append(writes, strings.TrimPrefix(path, root)+"="+v)
		if failWrite {
			return &os.PathError{Op: "open", Path: path, Err: errors.New("read-only file system")}
		}
		return os.WriteFile(path, []byte(v), 0o644)
	}
	t.Cleanup(func() { procSys, writeSysctl = origRoot, origWrite })
	return &writes
}

func TestEnsureSysctlAlreadySet(t *testing.T) {
	// As on kind and kubeadm nodes; /proc/sys read-only, as in a container
	// that is not privileged: nothing is written, nothing fails.
	writes := fakeProcSys(t, "1\n", true)
	changed, err := ensureSysctl("net.ipv4.ip_forward", "1")
	if err != nil || changed || len(*writes) != 0 {
		t.Fatalf("changed %v, err %v, writes %v: want no write", changed, err, *writes)
	}
}

func TestEnsureSysctlWrites(t *testing.T) {
	writes := fakeProcSys(t, "0\n", false)
	changed, err := ensureSysctl("net.ipv4.ip_forward", "1")
	if err != nil || !changed || len(*writes) != 1 || (*writes)[0] != "/net/ipv4/ip_forward=1" {
		t.Fatalf("changed %v, err %v, writes %v: want one write of 1", changed, err, *writes)
	}
	if changed, err := ensureSysctl("net.ipv4.ip_forward", "1"); err != nil || changed || len(*writes) != 1 {
		t.Fatalf("second call: changed %v, err %v, writes %v", changed, err, *writes)
	}
}

func TestEnsureSysctlReadOnly(t *testing.T) {
	fakeProcSys(t, "0\n", true)
	_, err := ensureSysctl("net.ipv4.ip_forward", "1")
	if err == nil || !strings.Contains(err.Error(), "net.ipv4.ip_forward is 0 and cannot be set to 1") || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("err %v", err)
	}
	fakeProcSys(t, "", true)
	if _, err := ensureSysctl("net.ipv4.ip_forward", "1"); err == nil || !strings.Contains(err.Error(), "cannot read it") {
		t.Fatalf("missing file: err %v", err)
	}
}
