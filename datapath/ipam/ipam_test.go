package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// helperEnv makes the test binary act as one allocating process (see TestMain).
const helperEnv = "CNILAB_IPAM_TEST_HELPER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(helper(spec))
	}
	os.Exit(m.Run())
}

// helper allocates n addresses for distinct containers and prints them, one a
// line. spec is "dataDir,cidr,prefix,n".
func helper(spec string) int {
	f := strings.Split(spec, ",")
	n, _ := strconv.Atoi(f[3])
	for i := range n {
		a, err := New(f[0], f[1], "") // a fresh allocator (and fds) each time
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ip, err := a.Allocate(fmt.Sprintf("%s-%d", f[2], i), "eth0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(ip)
	}
	return 0
}

func mustNew(t *testing.T, dir, cidr, gw string) *Allocator {
	t.Helper()
	a, err := New(dir, cidr, gw)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustAlloc(t *testing.T, a *Allocator, id, ifname string) netip.Addr {
	t.Helper()
	ip, err := a.Allocate(id, ifname)
	if err != nil {
		t.Fatalf("allocate %s/%s: %v", id, ifname, err)
	}
	return ip
}

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ cidr, gw string }{
		{"nope", ""}, {"fd00::/64", ""}, {"10.0.0.0/31", ""}, {"10.0.0.0/24", "10.0.1.1"}, {"10.0.0.0/24", "x"},
	} {
		if _, err := New(dir, c.cidr, c.gw); err == nil {
			t.Errorf("New(%q, %q): want error", c.cidr, c.gw)
		}
	}
	a := mustNew(t, dir, "10.244.1.7/24", "")
	if got, want := a.Dir(), filepath.Join(dir, "10.244.1.0_24"); got != want {
		t.Errorf("Dir = %s, want %s", got, want)
	}
}

func TestOrderExclusionsAndExhaustion(t *testing.T) {
	dir := t.TempDir()
	a := mustNew(t, dir, "10.1.0.0/29", "10.1.0.1")
	// /29: .0 network, .1 gateway, .7 broadcast: .2 … .6 are free, in order.
	for i, want := range []string{"10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"} {
		if got := mustAlloc(t, a, fmt.Sprint("c", i), "eth0"); got.String() != want {
			t.Fatalf("allocation %d = %s, want %s", i, got, want)
		}
	}
	_, err := a.Allocate("c-extra", "eth0")
	if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "10.1.0.0/29") {
		t.Fatalf("exhausted range: err = %v, want ErrExhausted naming the CIDR", err)
	}
	// Freed addresses come back, after the cursor (round robin).
	if _, err := a.Release("c1", "eth0"); err != nil {
		t.Fatal(err)
	}
	if got := mustAlloc(t, a, "c-extra", "eth0"); got.String() != "10.1.0.3" {
		t.Fatalf("after release got %s, want 10.1.0.3", got)
	}
}

func TestGatewayNotFirst(t *testing.T) {
	a := mustNew(t, t.TempDir(), "10.1.0.0/30", "10.1.0.2")
	if got := mustAlloc(t, a, "c", "eth0"); got.String() != "10.1.0.1" {
		t.Fatalf("got %s, want 10.1.0.1", got)
	}
	if _, err := a.Allocate("d", "eth0"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("want exhaustion, got %v", err)
	}
}

func TestIdempotencyAndRelease(t *testing.T) {
	dir := t.TempDir()
	a := mustNew(t, dir, "10.2.0.0/24", "")
	ip1 := mustAlloc(t, a, "c1", "eth0")
	if again := mustAlloc(t, a, "c1", "eth0"); again != ip1 {
		t.Fatalf("second allocate = %s, want %s", again, ip1)
	}
	ip2 := mustAlloc(t, a, "c1", "net1") // another interface, another address
	if ip2 == ip1 {
		t.Fatalf("c1/net1 got c1/eth0's address %s", ip1)
	}
	b, err := os.ReadFile(filepath.Join(a.Dir(), ip1.String()))
	if err != nil || string(b) != "c1\neth0\n" {
		t.Fatalf("allocation file = %q, %v", b, err)
	}
	if got, ok, err := a.Lookup("c1", "net1"); err != nil || !ok || got != ip2 {
		t.Fatalf("Lookup = %s %v %v", got, ok, err)
	}
	if rel, err := a.Release("c1", "eth0"); err != nil || len(rel) != 1 || rel[0] != ip1 {
		t.Fatalf("Release = %v, %v", rel, err)
	}
	if rel, err := a.Release("c1", "eth0"); err != nil || len(rel) != 0 {
		t.Fatalf("second Release = %v, %v", rel, err)
	}
	if _, ok, _ := a.Lookup("c1", "eth0"); ok {
		t.Fatal("released address still owned")
	}
	// Releasing in a range that was never used is fine too.
	if _, err := mustNew(t, dir, "10.9.0.0/24", "").Release("x", "eth0"); err != nil {
		t.Fatal(err)
	}
}

func TestPersistenceAndEverywhere(t *testing.T) {
	dir := t.TempDir()
	ip := mustAlloc(t, mustNew(t, dir, "10.3.0.0/24", ""), "c1", "eth0")
	mustAlloc(t, mustNew(t, dir, "10.4.0.0/24", ""), "c2", "eth0")
	mustAlloc(t, mustNew(t, dir, "10.4.0.0/24", ""), "c3", "eth0")

	b := mustNew(t, dir, "10.3.0.0/24", "") // as after a restart
	if again := mustAlloc(t, b, "c1", "eth0"); again != ip {
		t.Fatalf("new allocator gave %s, want %s", again, ip)
	}
	if next := mustAlloc(t, b, "c9", "eth0"); next == ip || next.String() != "10.3.0.3" {
		t.Fatalf("new allocator gave %s to another container, want 10.3.0.3", next)
	}
	all, err := ListEverywhere(dir)
	if err != nil || len(all) != 4 {
		t.Fatalf("ListEverywhere = %v, %v", all, err)
	}
	if got, err := ReleaseEverywhere(dir, "c2", "eth0"); err != nil || len(got) != 1 {
		t.Fatalf("ReleaseEverywhere = %v, %v", got, err)
	}
	freed, err := ReleaseAllExceptEverywhere(dir, map[Attachment]bool{{"c1", "eth0"}: true})
	if err != nil || len(freed) != 2 {
		t.Fatalf("ReleaseAllExceptEverywhere freed %v, %v; want c3 and c9", freed, err)
	}
	if all, _ := ListEverywhere(dir); len(all) != 1 || all[0].IP != ip {
		t.Fatalf("left: %v", all)
	}
}

func TestGCFreesTornFiles(t *testing.T) {
	dir := t.TempDir()
	a := mustNew(t, dir, "10.5.0.0/24", "")
	mustAlloc(t, a, "c1", "eth0")
	if err := os.WriteFile(filepath.Join(a.Dir(), "10.5.0.9"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	freed, err := a.ReleaseAllExcept(map[Attachment]bool{{"c1", "eth0"}: true})
	if err != nil || len(freed) != 1 || freed[0].IP.String() != "10.5.0.9" {
		t.Fatalf("freed %v, %v", freed, err)
	}
}

func TestConcurrentAllocators(t *testing.T) {
	dir := t.TempDir()
	const n = 20
	ips := make([]netip.Addr, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			a, err := New(dir, "10.6.0.0/24", "")
			if err == nil {
				ips[i], err = a.Allocate(fmt.Sprint("c", i), "eth0")
			}
			errs[i] = err
		})
	}
	wg.Wait()
	seen := map[netip.Addr]int{}
	for i, ip := range ips {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if j, dup := seen[ip]; dup {
			t.Fatalf("containers %d and %d both got %s", j, i, ip)
		}
		seen[ip] = i
	}
}

func TestConcurrentProcesses(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const procs, each = 6, 15
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for p := range procs {
		wg.Go(func() {
			cmd := exec.Command(exe)
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,10.7.0.0/24,p%d,%d", helperEnv, dir, p, each))
			cmd.Stderr = os.Stderr
			outs[p], errs[p] = cmd.Output()
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for p := range procs {
		if errs[p] != nil {
			t.Fatalf("process %d: %v", p, errs[p])
		}
		for _, ip := range strings.Fields(string(outs[p])) {
			if q, dup := seen[ip]; dup {
				t.Fatalf("processes %d and %d both got %s", q, p, ip)
			}
			seen[ip] = p
		}
	}
	if len(seen) != procs*each {
		t.Fatalf("got %d addresses, want %d", len(seen), procs*each)
	}
	all, err := ListEverywhere(dir)
	if err != nil || len(all) != procs*each {
		t.Fatalf("on disk: %d allocations (%v), want %d", len(all), err, procs*each)
	}
}
