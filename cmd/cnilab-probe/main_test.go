package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cnilab/cnilab/lab/probe"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestUsageErrors covers command lines that must exit 2 with a one-line error
// before any traffic is sent.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"connect"}, "accepts 1 arg"},
		{[]string{"connect", "--protocol", "http", "127.0.0.1:80"}, `unknown protocol "http"`},
		{[]string{"connect", "127.0.0.1"}, "missing port"},
		{[]string{"connect", "--protocol", "udp", ":80"}, "missing host"},
		{[]string{"connect", "--protocol", "sctp", "127.0.0.1:99999"}, "port must be 1-65535"},
		{[]string{"connect", "--protocol", "icmp", "127.0.0.1:80"}, "without port"},
		{[]string{"connect", "--timeout", "3", "127.0.0.1:80"}, "--timeout"},
		{[]string{"connect", "--timeout", "0s", "127.0.0.1:80"}, "must be positive"},
		{[]string{"load", "--mode", "TCP_MAERTS", "127.0.0.1:80"}, `unknown load mode "TCP_MAERTS"`},
		{[]string{"load", "--duration", "0s", "127.0.0.1:80"}, "must be positive"},
		{[]string{"load", "127.0.0.1"}, "missing port"},
		{[]string{"await", "--state", "open", "127.0.0.1:80"}, `--state "open"`},
		{[]string{"await", "--within", "0s", "127.0.0.1:80"}, "must be positive"},
		{[]string{"serve"}, "no ports"},
		{[]string{"serve", "--tcp", "x"}, "--tcp"},
		{[]string{"serve", "--udp", "70000"}, "out of range"},
		{[]string{"serve", "--address", "not-an-ip", "--tcp", "80"}, "not an IP address"},
		{[]string{"serve", "--name", "", "--tcp", "80"}, "--name is empty"},
		{[]string{"resolve"}, "accepts 1 arg"},
		{[]string{"resolve", "--timeout", "0s", "kubernetes.default"}, "must be positive"},
		{[]string{"bogus"}, "unknown command"},
		{[]string{"features", "extra"}, "unknown command"},
	} {
		code, out, errs := runCmd(t, tc.args...)
		if code != exitUsage || out != "" || !strings.Contains(errs, tc.wantErr) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and one line containing %q",
				tc.args, code, out, errs, tc.wantErr)
		}
	}
}

func TestConnectRequest(t *testing.T) {
	req, err := connectRequest("UDP", "[::1]:53", time.Second)
	want := probe.Request{Protocol: probe.UDP, Target: "[::1]:53", Timeout: time.Second}
	if err != nil || req != want {
		t.Fatalf("got %+v, %v; want %+v", req, err, want)
	}
}

func TestServeAndConnect(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var errb bytes.Buffer
	done := make(chan int, 1)
	// A free port for serve (TestCLI covers --tcp 0 and reading the log).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	go func() {
		done <- run(ctx, []string{"serve", "--name", "pod-a", "--address", "127.0.0.1", "--tcp", itoa(port)}, &bytes.Buffer{}, &errb)
	}()

	target := net.JoinHostPort("127.0.0.1", itoa(port))
	var res probe.Result
	for deadline := time.Now().Add(10 * time.Second); ; {
		code, out, _ := runCmd(t, "connect", "--timeout", "2s", target)
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("connect printed %q: %v", out, err)
		}
		if code == exitOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !res.Success || res.Reply != "pod-a" {
		t.Errorf("connect: got %+v, want reply pod-a", res)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("serve exited %d after cancel, stderr %q", code, errb.String())
	}
	if !strings.Contains(errb.String(), `serving "pod-a" on tcp 127.0.0.1:`+itoa(port)) {
		t.Errorf("serve stderr %q lacks the listener line", errb.String())
	}
}

func TestFeaturesAndVersion(t *testing.T) {
	code, out, _ := runCmd(t, "features")
	var f probe.Features
	if code != exitOK || json.Unmarshal([]byte(out), &f) != nil || f.SCTP != probe.SCTPSupported() {
		t.Errorf("features: exit %d, stdout %q", code, out)
	}
	if code, out, _ := runCmd(t, "version"); code != exitOK || !strings.HasPrefix(out, "cnilab-probe ") {
		t.Errorf("version: exit %d, stdout %q", code, out)
	}
}

func TestResolveLiteral(t *testing.T) {
	code, out, errs := runCmd(t, "resolve", "10.96.0.10")
	if code != 0 || !strings.Contains(out, `"addresses":["10.96.0.10"]`) || errs != "" {
		t.Errorf("resolve 10.96.0.10: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
