package netns

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
}

func TestCreateRunDelete(t *testing.T) {
	requireRoot(t)
	name := fmt.Sprintf("cnilab.nstest%d.node-1", os.Getpid()%100000)
	if err := Create(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Delete(name) })
	if !Exists(name) {
		t.Fatal("created namespace does not exist")
	}
	if err := Create(name); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second create: want 'already exists', got %v", err)
	}
	names, err := List("cnilab.nstest")
	if err != nil || len(names) == 0 {
		t.Fatalf("List did not find %s: %v %v", name, names, err)
	}
	// Inside, only lo exists: the namespace is really a new one.
	var ifaces []net.Interface
	if err := Do(name, func() error {
		var err error
		ifaces, err = net.Interfaces()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(ifaces) != 1 || ifaces[0].Name != "lo" {
		t.Fatalf("interfaces in a new namespace: %v", ifaces)
	}
	cmd, err := Command(name, "cat", "/proc/self/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "eth") {
		t.Fatalf("command ran outside the namespace:\n%s", out)
	}
	if err := Delete(name); err != nil {
		t.Fatal(err)
	}
	if Exists(name) {
		t.Fatal("namespace still exists after Delete")
	}
	if err := Delete(name); err != nil {
		t.Fatalf("deleting a missing namespace must not fail: %v", err)
	}
}
