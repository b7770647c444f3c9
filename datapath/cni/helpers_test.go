package cni

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/cnilab/cnilab/datapath/api"
)

// fakeAgent serves the agent API on a unix socket and records calls.
type fakeAgent struct {
	socket string
	srv    *http.Server

	mu        sync.Mutex
	node      api.NodeInfo
	putStatus int // non-zero: PUT answers this status
	calls     []string
	endpoints map[string]api.Endpoint
}

func startAgent(t *testing.T, node api.NodeInfo) *fakeAgent {
	t.Helper()
	a := &fakeAgent{socket: filepath.Join(t.TempDir(), "agent.sock"), node: node, endpoints: map[string]api.Endpoint{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathNode, func(w http.ResponseWriter, _ *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.calls = append(a.calls, "GET node")
		_ = json.NewEncoder(w).Encode(a.node)
	})
	mux.HandleFunc("PUT "+api.PathEndpoints+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.calls = append(a.calls, "PUT "+r.PathValue("id"))
		if a.putStatus != 0 {
			w.WriteHeader(a.putStatus)
			_ = json.NewEncoder(w).Encode(api.Error{Message: "injected failure"})
			return
		}
		var ep api.Endpoint
		if err := json.NewDecoder(r.Body).Decode(&ep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.endpoints[r.PathValue("id")] = ep
	})
	mux.HandleFunc("DELETE "+api.PathEndpoints+"/{id}", func(_ http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.calls = append(a.calls, "DELETE "+r.PathValue("id"))
		delete(a.endpoints, r.PathValue("id"))
	})
	l, err := net.Listen("unix", a.socket)
	if err != nil {
		t.Fatal(err)
	}
	a.srv = &http.Server{Handler: mux}
	go func() { _ = a.srv.Serve(l) }()
	t.Cleanup(a.stop)
	return a
}

// stop makes the agent unreachable (idempotent).
func (a *fakeAgent) stop() { _ = a.srv.Close(); _ = os.Remove(a.socket) }

func (a *fakeAgent) set(f func(a *fakeAgent)) { a.mu.Lock(); defer a.mu.Unlock(); f(a) }

func (a *fakeAgent) endpoint(id string) (api.Endpoint, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ep, ok := a.endpoints[id]
	return ep, ok
}

func (a *fakeAgent) called(call string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.calls {
		if c == call {
			return true
		}
	}
	return false
}

var nsSeq atomic.Int32

// newNetns creates a uniquely named namespace under /run/netns (as `ip netns
// add` does) with lo up, removed when the test ends.
func newNetns(t *testing.T, role string) string {
	t.Helper()
	name := fmt.Sprintf("cnilab.cnitest%d.%s%d", os.Getpid(), role, nsSeq.Add(1))
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	h, err := netns.NewNamed(name)
	if err == nil {
		if lo, lerr := netlink.LinkByName("lo"); lerr == nil {
			_ = netlink.LinkSetUp(lo)
		}
		h.Close()
	}
	if serr := netns.Set(orig); serr != nil {
		t.Fatalf("return to the test's netns: %v", serr) // thread stays locked and dies
	}
	orig.Close()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	return "/run/netns/" + name
}

// nlAt returns a netlink handle in the namespace at path.
func nlAt(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// inNetns runs fn on a thread in the namespace at path.
func inNetns(path string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromPath(path)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, err) // thread stays locked and dies with the goroutine
	}
	runtime.UnlockOSThread()
	return ferr
}

var (
	buildOnce  sync.Once
	pluginPath string
	buildErr   error
	buildDir   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// pluginBinary builds cnilab-cni once per test binary.
func pluginBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "cnilab-cni-test-"); buildErr != nil {
			return
		}
		pluginPath = filepath.Join(buildDir, "cnilab-cni")
		out, err := exec.Command("go", "build", "-o", pluginPath, "github.com/cnilab/cnilab/cmd/cnilab-cni").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build plugin: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return pluginPath
}

// lab is one test's scratch node: a node namespace, an agent, an IPAM dir.
type lab struct {
	t       *testing.T
	plugin  string
	nodeNS  string
	agent   *fakeAgent
	ipamDir string
	conf    map[string]any
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and veths")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs nsenter (util-linux) to run the plugin in the node namespace")
	}
}

var testNode = api.NodeInfo{NodeName: "node-1", PodCIDR: "10.250.1.0/24", Gateway: "10.250.1.1", MTU: 1450, Ready: true}

func newLab(t *testing.T) *lab {
	t.Helper()
	needRoot(t)
	l := &lab{t: t, plugin: pluginBinary(t), nodeNS: newNetns(t, "node"), agent: startAgent(t, testNode),
		ipamDir: filepath.Join(t.TempDir(), "ipam")}
	l.conf = map[string]any{"cniVersion": "1.1.0", "name": "cnilab", "type": "cnilab-cni",
		"agentSocket": l.agent.socket, "ipamDataDir": l.ipamDir, "mtu": 0}
	return l
}

// result of one plugin run.
type run struct {
	stdout, stderr []byte
	err            *types.Error // nil on success
}

// exec runs the plugin in the node namespace through the CNI protocol.
func (l *lab) exec(cmd, containerID, netnsPath, ifname string, extra map[string]any) run {
	l.t.Helper()
	conf := map[string]any{}
	for k, v := range l.conf {
		conf[k] = v
	}
	for k, v := range extra {
		conf[k] = v
	}
	stdin, _ := json.Marshal(conf)
	c := exec.Command("nsenter", "--net="+l.nodeNS, "--", l.plugin)
	c.Env = []string{"CNI_COMMAND=" + cmd, "CNI_CONTAINERID=" + containerID, "CNI_NETNS=" + netnsPath,
		"CNI_IFNAME=" + ifname, "CNI_PATH=" + filepath.Dir(l.plugin),
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-" + containerID + ";K8S_POD_UID=uid-" + containerID + ";K8S_POD_INFRA_CONTAINER_ID=" + containerID}
	c.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	r := run{}
	err := c.Run()
	r.stdout, r.stderr = out.Bytes(), errb.Bytes()
	if err != nil {
		r.err = &types.Error{}
		if jerr := json.Unmarshal(r.stdout, r.err); jerr != nil {
			l.t.Fatalf("%s %s: %v, stdout %q not a CNI error; stderr %s", cmd, containerID, err, r.stdout, r.stderr)
		}
	}
	return r
}

// add runs ADD and returns the parsed result, failing the test on error.
func (l *lab) add(containerID, netnsPath string) *current.Result {
	l.t.Helper()
	r := l.exec("ADD", containerID, netnsPath, "eth0", nil)
	if r.err != nil {
		l.t.Fatalf("ADD %s: %v (stderr %s)", containerID, r.err, r.stderr)
	}
	res, err := current.NewResult(r.stdout)
	if err != nil {
		l.t.Fatalf("ADD %s: parse result %s: %v", containerID, r.stdout, err)
	}
	out, err := current.GetResult(res)
	if err != nil {
		l.t.Fatal(err)
	}
	return out
}

func (l *lab) mustOK(r run, what string) {
	l.t.Helper()
	if r.err != nil {
		l.t.Fatalf("%s: %v (stderr %s)", what, r.err, r.stderr)
	}
}

func wantCode(t *testing.T, r run, code uint, mention string) {
	t.Helper()
	if r.err == nil || r.err.Code != code || !strings.Contains(r.err.Error(), mention) {
		t.Fatalf("want CNI error %d mentioning %q, got %+v (stdout %s)", code, mention, r.err, r.stdout)
	}
}

// ipFiles lists the allocation files in the lab's IPAM dir.
func (l *lab) ipFiles() []string {
	var out []string
	_ = filepath.WalkDir(l.ipamDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && net.ParseIP(d.Name()) != nil {
			out = append(out, d.Name())
		}
		return nil
	})
	return out
}
