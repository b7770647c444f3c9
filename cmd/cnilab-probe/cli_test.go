package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cnilab/cnilab/lab/probe"
)

func itoa(i int) string { return strconv.Itoa(i) }

// buildCLI compiles cnilab-probe into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short mode")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "cnilab-probe")
	out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// exitCode runs the binary and returns its exit code, stdout and stderr.
func exitCode(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return 0, out.String(), errb.String()
}

func TestCLI(t *testing.T) {
	bin := buildCLI(t)

	// serve with free ports; the listener lines on stderr give the addresses.
	srv := exec.Command(bin, "serve", "--name", "bin-a", "--address", "127.0.0.1", "--tcp", "0", "--udp", "0")
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	lines := bufio.NewScanner(stderr)
	addrs := map[string]string{}
	for len(addrs) < 2 && lines.Scan() {
		f := strings.Fields(lines.Text()) // cnilab-probe: serving "bin-a" on tcp 127.0.0.1:NNN
		if len(f) == 6 && f[1] == "serving" {
			addrs[f[4]] = f[5]
		}
	}
	if len(addrs) < 2 {
		t.Fatalf("serve printed listeners %v; want tcp and udp", addrs)
	}

	for _, p := range []string{"tcp", "udp"} {
		code, out, errs := exitCode(t, bin, "connect", "--protocol", p, "--timeout", "5s", addrs[p])
		var res probe.Result
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !res.Success || res.Reply != "bin-a" {
			t.Errorf("connect %s: exit %d, stdout %q, stderr %q; want exit 0 and reply bin-a", p, code, out, errs)
		}
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		for lines.Scan() {
		}
		waited <- srv.Wait()
	}()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}

	// The server is gone: its TCP port now refuses.
	code, out, _ := exitCode(t, bin, "connect", "--timeout", "5s", addrs["tcp"])
	var res probe.Result
	if code != 1 || json.Unmarshal([]byte(out), &res) != nil || res.Success || res.Error == "" {
		t.Errorf("connect to a closed port: exit %d, stdout %q; want exit 1 and a failed result", code, out)
	}

	code, out, errs := exitCode(t, bin, "connect", "--protocol", "carrier-pigeon", "127.0.0.1:80")
	if code != 2 || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "carrier-pigeon") {
		t.Errorf("bad protocol: exit %d, stdout %q, stderr %q; want exit 2 and one error line", code, out, errs)
	}

	if code, out, _ := exitCode(t, bin, "features"); code != 0 || !strings.HasPrefix(out, `{"sctp":`) {
		t.Errorf("features: exit %d, stdout %q", code, out)
	}

	if !probe.SCTPSupported() {
		code, _, errs := exitCode(t, bin, "serve", "--address", "127.0.0.1", "--sctp", "0")
		if code != 1 || !strings.Contains(errs, "listen sctp 127.0.0.1:0: protocol not supported by this kernel") {
			t.Errorf("serve --sctp without SCTP: exit %d, stderr %q; want exit 1 naming sctp", code, errs)
		}
	}
}
