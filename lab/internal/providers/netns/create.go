package netns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/lab/internal/cni"
	"github.com/cnilab/cnilab/lab/internal/controlplane"
	"github.com/cnilab/cnilab/lab/internal/kube"
	"github.com/cnilab/cnilab/lab/internal/kubeproxy"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
	"github.com/cnilab/cnilab/lab/internal/proc"
	"github.com/cnilab/cnilab/lab/internal/steps"
	"github.com/cnilab/cnilab/lab/noderole"
	"github.com/cnilab/cnilab/lab/portforward"
)

// Create brings up a lab as a list of steps; if any step fails, everything
// made so far is removed and the error names the step.
func (p Provider) Create(ctx context.Context, cfg config.Config, progress io.Writer) (*Cluster, error) {
	if progress == nil {
		progress = io.Discard
	}
	cfg.StateDir = p.StateDir
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	installer, err := cni.ForName(cfg.CNI)
	if err != nil {
		return nil, err
	}
	backend, err := p.backendFor(cfg.Provider)
	if err != nil {
		return nil, err
	}
	listener, err := portforward.Listen(net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.APIPort)))
	if err != nil {
		return nil, fmt.Errorf("API port-forward: %w", err)
	}
	defer listener.Close()
	if err := preflight(cfg, installer, backend); err != nil {
		return nil, err
	}
	cfg.APIPort = listener.Addr().(*net.TCPAddr).Port

	c := &Cluster{cfg: cfg, backend: backend}
	b := &bringUp{cfg: cfg, cluster: c, installer: installer, backend: backend, listener: listener, out: progress}
	type step = steps.Step
	todo := []step{
		{Name: "Writing lab state", Run: b.writeState},
		{Name: fmt.Sprintf("Creating underlay and %d nodes", cfg.Nodes), Run: b.createNetwork},
		{Name: "Starting etcd and kube-apiserver", Run: b.startControlPlane},
		{Name: "Waiting for the API server", Run: b.waitAPI},
		{Name: "Starting kube-controller-manager and kube-scheduler", Run: b.startControllers},
		{Name: "Waiting for the nodes to boot", Run: b.waitNodes},
	}
	if cfg.Real() {
		todo = append(todo, []step{
			{Name: "Starting containerd and the kubelet", Run: b.startRealNodes},
			{Name: "Importing images", Run: b.importImages},
			{Name: "Waiting for nodes to register and get PodCIDRs", Run: b.waitPodCIDRs},
			{Name: "Routing the PodCIDRs from the control plane", Run: b.routePodCIDRs},
		}...)
		if !cfg.NoKubeProxy {
			todo = append(todo, step{Name: "Deploying kube-proxy (iptables mode, DaemonSet)", Run: b.deployKubeProxy})
		}
		todo = append(todo, step{Name: "Installing CNI " + cfg.CNI + " (DaemonSet)", Run: b.installCNIReal},
			step{Name: "Deploying CoreDNS (kube-dns)", Run: b.deployCoreDNS})
	} else {
		todo = append(todo, []step{
			{Name: "Starting node roles", Run: b.startNodeRoles},
			{Name: "Waiting for nodes to register and get PodCIDRs", Run: b.waitPodCIDRs},
			{Name: "Installing CNI " + cfg.CNI, Run: b.installCNI},
		}...)
	}
	if !cfg.NoKubeProxy && !cfg.Real() {
		todo = append(todo, step{Name: "Starting kube-proxy (iptables mode)", Run: b.startKubeProxy})
	}
	todo = append(todo, []step{
		{Name: "Waiting for nodes to be Ready", Run: b.waitReady},
	}...)
	start := time.Now()
	fmt.Fprintf(progress, "Creating lab %q (provider %s, CNI %s, %d nodes) ...\n", cfg.Name, cfg.Provider, cfg.CNI, cfg.Nodes)
	run := steps.Runner{Progress: progress, Cleanup: func(_ steps.Step, err error) error {
		fmt.Fprintf(progress, "   cleaning up lab %q\n", cfg.Name)
		if lc, ok := backend.(logCollector); ok {
			lctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_ = lc.CollectLogs(lctx, cfg) // best effort: the nodes may be what failed
			cancel()
		}
		if kept, kerr := keepLogs(cfg); kerr == nil && kept != "" {
			err = fmt.Errorf("%w (logs kept in %s)", err, kept)
		}
		if derr := p.Delete(cfg.Name); derr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", derr))
		}
		return err
	}}
	if err := run.Run(ctx, todo); err != nil {
		return nil, fmt.Errorf("create lab %s: %w", cfg.Name, err)
	}
	fmt.Fprintf(progress, "Lab %q is up in %.1fs; API server at https://127.0.0.1:%d\n", cfg.Name, time.Since(start).Seconds(), cfg.APIPort)
	return c, nil
}

// logCollector is a backend whose nodes keep logs of their own (VMs); they
// are copied into the lab's log directory before a failed bring-up removes it.
type logCollector interface {
	CollectLogs(ctx context.Context, cfg config.Config) error
}

// keepLogs copies the lab's logs out of its state directory before a failed
// bring-up removes it, so the failure can be read.
func keepLogs(cfg config.Config) (string, error) {
	entries, err := os.ReadDir(filepath.Join(cfg.Dir(), "logs"))
	if err != nil || len(entries) == 0 {
		return "", err
	}
	dst, err := os.MkdirTemp("", "cnilab-"+cfg.Name+"-logs-")
	if err != nil {
		return "", err
	}
	if err := CopyLogs(cfg, dst); err != nil {
		return "", err
	}
	return dst, nil
}

// CopyLogs copies every file of the lab's log directory into dst (made if
// needed). A log that cannot be read is left out; failing to write one is an
// error.
func CopyLogs(cfg config.Config, dst string) error {
	src := filepath.Join(cfg.Dir(), "logs")
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// preflight checks, before anything is made, that the lab can be made.
func preflight(cfg config.Config, installer cni.Installer, backend NodeBackend) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the %s provider needs root (network namespaces, links, mounts)", cfg.Provider)
	}
	if err := backend.Preflight(cfg); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, cfg.Name)); err == nil {
		return fmt.Errorf("lab %q already exists (remove it with 'cnilab lab down --name %s')", cfg.Name, cfg.Name)
	}
	if nss, _ := labns.List(cfg.NetnsPrefix()); len(nss) > 0 {
		return fmt.Errorf("lab %q left namespaces behind (%s, ...): run 'cnilab lab down --name %s'", cfg.Name, nss[0], cfg.Name)
	}
	if err := controlplane.CheckBinaries(cfg.ToolsDir); err != nil {
		return err
	}
	if cfg.Real() {
		return preflightReal(cfg)
	}
	env := cni.Env{ToolsDir: cfg.ToolsDir, BinDir: datapathBinDir(cfg, cfg.BinDir), CNIBinDir: cfg.CNIBinDir}
	bins := append(installer.Binaries(env), filepath.Join(cfg.BinDir, "cnilab"), filepath.Join(cfg.BinDir, "cnilab-probe"))
	if !cfg.NoKubeProxy {
		bins = append(bins, filepath.Join(cfg.ToolsDir, kubeproxy.Binary))
	}
	return cni.CheckBinaries(bins)
}

type bringUp struct {
	cfg       config.Config
	cluster   *Cluster
	installer cni.Installer
	backend   NodeBackend
	listener  *net.TCPListener
	out       io.Writer
	creds     *controlplane.Credentials
	client    kubernetes.Interface
}

func (b *bringUp) writeState(context.Context) error {
	if err := os.MkdirAll(b.cfg.Dir(), 0o700); err != nil {
		return err
	}
	j, err := json.MarshalIndent(b.cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.cfg.Dir(), stateFile), j, 0o644)
}

func (b *bringUp) createNetwork(ctx context.Context) error {
	if err := createUnderlay(b.cfg); err != nil {
		return err
	}
	return b.backend.CreateNodes(ctx, b.cfg, b.out)
}

func (b *bringUp) waitNodes(ctx context.Context) error {
	return b.backend.WaitNodes(ctx, b.cfg, b.out)
}

func (b *bringUp) startControlPlane(context.Context) error {
	creds, err := controlplane.Start(controlplane.Config{
		Lab: b.cfg.Name, Dir: b.cfg.Dir(), ToolsDir: b.cfg.ToolsDir, Netns: b.cfg.UnderlayNetns(),
		Address: b.cfg.ControlPlaneIP().String(), ClusterCIDR: b.cfg.ClusterCIDR,
		ServiceCIDR: b.cfg.ServiceCIDR, NodeMask: b.cfg.NodeMask,
	})
	if err != nil {
		return err
	}
	b.creds = creds
	// The port-forward lives in the underlay namespace and holds the loopback
	// listener opened here in the root namespace.
	f, err := b.listener.File()
	if err != nil {
		return fmt.Errorf("port-forward: %w", err)
	}
	defer f.Close()
	target := net.JoinHostPort(b.cfg.ControlPlaneIP().String(), strconv.Itoa(controlplane.APIPort))
	cmd, err := labns.Command(b.cfg.UnderlayNetns(), filepath.Join(b.cfg.BinDir, "cnilab"), "lab", "port-forward", "--fd", "3", "--target", target)
	if err != nil {
		return err
	}
	if _, err := proc.Start(proc.Spec{Lab: b.cfg.Name, Name: "port-forward", Cmd: cmd, Files: []*os.File{f},
		LogDir: filepath.Join(b.cfg.Dir(), "logs"), PidDir: filepath.Join(b.cfg.Dir(), "run")}); err != nil {
		return err
	}
	server := "https://127.0.0.1:" + strconv.Itoa(b.cfg.APIPort)
	return b.creds.KubeconfigFor(b.cluster.Kubeconfig(), "cnilab-"+b.cfg.Name, server, "cnilab-admin", "system:masters")
}

func (b *bringUp) startControllers(context.Context) error {
	return controlplane.StartControllers(b.creds)
}

func (b *bringUp) waitAPI(ctx context.Context) error {
	client, err := b.cluster.Client()
	if err != nil {
		return err
	}
	b.client = client
	var last error
	err = poll(ctx, 3*time.Minute, func() bool {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		last = err
		if err == nil && string(body) == "ok" {
			return true
		}
		return !b.controlPlaneAlive(&last)
	})
	if last != nil {
		return fmt.Errorf("%w (logs: %s)", last, filepath.Join(b.cfg.Dir(), "logs"))
	}
	return err
}

// controlPlaneAlive reports whether every control-plane process still runs,
// setting *err to name the first that died.
func (b *bringUp) controlPlaneAlive(err *error) bool {
	for _, bin := range controlplane.Binaries[:2] {
		pidb, rerr := os.ReadFile(filepath.Join(b.cfg.Dir(), "run", bin+".pid"))
		pid, _ := strconv.Atoi(string(pidb))
		if rerr != nil || !proc.Alive(pid) {
			*err = fmt.Errorf("%s exited; see %s", bin, controlplane.Logs(b.cfg.Dir(), bin))
			return false
		}
	}
	return true
}

// datapathBinDir is where the lab's cnilab-agent and cnilab-cni come from:
// config.Config.DatapathBinDir (another build, for a comparison) or bin.
func datapathBinDir(cfg config.Config, bin string) string {
	if cfg.DatapathBinDir != "" {
		return cfg.DatapathBinDir
	}
	return bin
}

func (b *bringUp) startNodeRoles(ctx context.Context) error {
	bin, _, cniBin := b.backend.Paths(b.cfg)
	for _, n := range b.backend.Nodes(b.cfg) {
		kc := filepath.Join(n.Dir, "etc", "kubernetes", "kubelet.kubeconfig")
		data, err := b.creds.KubeconfigData("cnilab-"+b.cfg.Name, b.creds.InternalServer, "system:node:"+n.Name, "system:nodes")
		if err != nil {
			return err
		}
		if err := n.Host.WriteFile(ctx, kc, data, 0o600); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		nc := noderole.Config{
			NodeName: n.Name, NodeIP: n.IP, Kubeconfig: kc,
			CNIConfDir: n.ConfDir, CNIBinDirs: []string{cniBin, datapathBinDir(b.cfg, bin), bin},
			CNICacheDir: filepath.Join(n.Dir, "var", "lib", "cni", "cache"), StateDir: filepath.Join(n.Dir, "var", "lib", "node-role"),
			ProbeBinary: filepath.Join(bin, "cnilab-probe"), PodNetnsPrefix: b.cfg.NetnsPrefix() + "pod.",
		}
		j, err := json.MarshalIndent(nc, "", "  ")
		if err != nil {
			return err
		}
		ncPath := filepath.Join(n.Dir, "etc", "cnilab", "node-role.json")
		if err := n.Host.WriteFile(ctx, ncPath, j, 0o644); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		if err := n.Host.Start(ctx, "node-role-"+n.Name, []string{filepath.Join(bin, "cnilab"), "lab", "node-role", "--config", ncPath}, nil); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

func (b *bringUp) waitPodCIDRs(ctx context.Context) error {
	var missing string
	err := poll(ctx, 2*time.Minute, func() bool {
		for i := 1; i <= b.cfg.Nodes; i++ {
			n, err := b.client.CoreV1().Nodes().Get(ctx, b.cfg.NodeName(i), metav1.GetOptions{})
			if err != nil {
				missing = b.cfg.NodeName(i) + " not registered: " + err.Error()
				return false
			}
			if n.Spec.PodCIDR == "" {
				missing = b.cfg.NodeName(i) + " has no PodCIDR yet"
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("%w: %s (logs: %s)", err, missing, filepath.Join(b.cfg.Dir(), "logs"))
	}
	return nil
}

func (b *bringUp) installCNI(ctx context.Context) error {
	bin, tools, cniBin := b.backend.Paths(b.cfg)
	env := cni.Env{
		Lab: b.cfg.Name, Dir: b.cfg.Dir(), ToolsDir: tools, BinDir: datapathBinDir(b.cfg, bin), CNIBinDir: cniBin,
		ClusterCIDR: b.cfg.ClusterCIDR, ServiceCIDR: b.cfg.ServiceCIDR, Client: b.client, Progress: b.out,
		Kubeconfig: func(user string, groups ...string) ([]byte, error) {
			return b.creds.KubeconfigData("cnilab-"+b.cfg.Name, b.creds.InternalServer, user, groups...)
		},
	}
	return b.installer.Install(ctx, env, b.backend.Nodes(b.cfg))
}

// startKubeProxy starts kube-proxy on every node and waits until each has
// written its rules once.
func (b *bringUp) startKubeProxy(ctx context.Context) error {
	_, tools, _ := b.backend.Paths(b.cfg)
	env := cni.Env{Lab: b.cfg.Name, Dir: b.cfg.Dir(), ToolsDir: tools, ClusterCIDR: b.cfg.ClusterCIDR, Client: b.client,
		Kubeconfig: func(user string, groups ...string) ([]byte, error) {
			return b.creds.KubeconfigData("cnilab-"+b.cfg.Name, b.creds.InternalServer, user, groups...)
		},
	}
	nodes := b.backend.Nodes(b.cfg)
	if err := kubeproxy.Start(ctx, env, nodes); err != nil {
		return err
	}
	return b.waitKubeProxy(ctx, func(n cni.Node) string { return filepath.Join(n.LogDir, kubeproxy.Daemon(n.Name)+".log") })
}

// waitKubeProxy waits until kube-proxy has written its rules on every node;
// where names where to read why not.
func (b *bringUp) waitKubeProxy(ctx context.Context, where func(cni.Node) string) error {
	exec := func(ctx context.Context, node string, argv ...string) (string, error) {
		res, err := b.backend.ExecIn(ctx, b.cfg, node, "", argv)
		if err != nil {
			return "", err
		}
		if res.ExitCode != 0 {
			return "", fmt.Errorf("%s: exit %d: %s", argv[0], res.ExitCode, bytes.TrimSpace(res.Stderr))
		}
		return string(res.Stdout), nil
	}
	deadline := time.Now().Add(2 * time.Minute) // for all nodes together
	for _, n := range b.backend.Nodes(b.cfg) {
		var last error
		if err := poll(ctx, time.Until(deadline), func() bool {
			last = kubeproxy.Synced(ctx, n.Name, exec)
			return last == nil
		}); err != nil {
			return fmt.Errorf("kube-proxy on %s has not synced its rules: %w (%v; %s)", n.Name, err, last, where(n))
		}
	}
	return nil
}

func (b *bringUp) waitReady(ctx context.Context) error {
	var why string
	err := poll(ctx, 2*time.Minute, func() bool {
		for i := 1; i <= b.cfg.Nodes; i++ {
			n, err := b.client.CoreV1().Nodes().Get(ctx, b.cfg.NodeName(i), metav1.GetOptions{})
			if err != nil {
				why = err.Error()
				return false
			}
			if !kube.NodeReady(n) {
				why = n.Name + " is not Ready"
				return false
			}
		}
		// Pods can only be created once the service account controller has
		// made the default account.
		if _, err := b.client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			why = "no default service account yet"
			return false
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("%w: %s", err, why)
	}
	return nil
}

// poll calls done every 250ms until it returns true, ctx ends or timeout passes.
func poll(ctx context.Context, timeout time.Duration, done func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if done() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
