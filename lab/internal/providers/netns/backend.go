package netns

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/lab/internal/cni"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
	"github.com/cnilab/cnilab/lab/internal/proc"
)

// NodeBackend makes a lab's nodes and runs things on them. The netns
// provider's own backend makes every node a network namespace of this
// machine; the qemu provider's makes every node a VM on the same underlay.
// Everything else of a lab (underlay, control plane, node role, CNI
// installers) is shared.
type NodeBackend interface {
	// Preflight checks, before anything is made, that nodes can be made.
	Preflight(cfg config.Config) error
	// CreateNodes makes the nodes and attaches them to the underlay; it may
	// return before they are up (WaitNodes waits).
	CreateNodes(ctx context.Context, cfg config.Config, progress io.Writer) error
	// WaitNodes returns once every node can run programs.
	WaitNodes(ctx context.Context, cfg config.Config, progress io.Writer) error
	// Nodes describes the nodes as the CNI installers and node role see them.
	Nodes(cfg config.Config) []cni.Node
	// Paths returns cnilab's binaries, the tools and the CNI plugins
	// directories as the nodes see them.
	Paths(cfg config.Config) (bin, tools, cniBin string)
	// ExecIn runs argv on node, in the named namespace there (or the node's
	// own when netns is empty).
	ExecIn(ctx context.Context, cfg config.Config, node, netns string, argv []string) (ExecResult, error)
	// RestartDaemon stops a daemon started through a node's Host with sig
	// and starts it again as it was.
	RestartDaemon(ctx context.Context, cfg config.Config, node, name string, sig syscall.Signal) error
	// StopDaemon stops such a daemon with sig (SIGKILL after 10 s) and
	// leaves it stopped.
	StopDaemon(ctx context.Context, cfg config.Config, node, name string, sig syscall.Signal) error
	// ResumeDaemon starts a daemon StopDaemon stopped again, as it was.
	ResumeDaemon(ctx context.Context, cfg config.Config, node, name string) error
}

// backendFor is the node backend of a lab of provider: the namespace
// sandboxes of this package for netns, else one of p.Backends.
func (p Provider) backendFor(provider string) (NodeBackend, error) {
	if provider == "netns" || provider == "" {
		return nsBackend{}, nil
	}
	if be, ok := p.Backends[provider]; ok {
		return be, nil
	}
	return nil, fmt.Errorf("provider %q has no node backend", provider)
}

// nsBackend makes nodes that are network namespaces of this machine.
type nsBackend struct{}

func (nsBackend) Preflight(cfg config.Config) error {
	if _, err := exec.LookPath("nsenter"); err != nil {
		return fmt.Errorf("nsenter not found: install util-linux")
	}
	if !cfg.NoKubeProxy || cfg.CNI == "flannel" {
		if _, err := exec.LookPath("iptables"); err != nil {
			return fmt.Errorf("iptables not found (kube-proxy and flanneld write their rules with it): install iptables")
		}
	}
	return nil
}

func (nsBackend) CreateNodes(_ context.Context, cfg config.Config, _ io.Writer) error {
	for i := 1; i <= cfg.Nodes; i++ {
		if err := createNode(cfg, i); err != nil {
			return err
		}
	}
	return nil
}

func (nsBackend) WaitNodes(context.Context, config.Config, io.Writer) error { return nil }

// NodeDir is the root of a netns node's own files on this machine.
func NodeDir(cfg config.Config, node string) string {
	return filepath.Join(cfg.Dir(), "nodes", node)
}

func (nsBackend) Nodes(cfg config.Config) []cni.Node {
	var out []cni.Node
	logs := filepath.Join(cfg.Dir(), "logs")
	for i := 1; i <= cfg.Nodes; i++ {
		dir := NodeDir(cfg, cfg.NodeName(i))
		out = append(out, cni.Node{Name: cfg.NodeName(i), IP: cfg.NodeIP(i).String(),
			Dir: dir, ConfDir: filepath.Join(dir, "etc", "cni", "net.d"), LogDir: logs,
			Host: cni.LocalHost{Lab: cfg.Name, Netns: cfg.NodeNetns(i), LogDir: logs, PidDir: filepath.Join(cfg.Dir(), "run")}})
	}
	return out
}

func (nsBackend) Paths(cfg config.Config) (string, string, string) {
	return cfg.BinDir, cfg.ToolsDir, cfg.CNIBinDir
}

func (nsBackend) ExecIn(ctx context.Context, cfg config.Config, node, ns string, argv []string) (ExecResult, error) {
	if ns == "" {
		i, err := nodeIndex(cfg, node)
		if err != nil {
			return ExecResult{}, err
		}
		ns = cfg.NodeNetns(i)
	} else if !labns.Exists(ns) {
		return ExecResult{}, fmt.Errorf("no network namespace %s", ns)
	}
	return execLocal(ctx, cfg, ns, argv)
}

func (nsBackend) RestartDaemon(_ context.Context, cfg config.Config, _, name string, sig syscall.Signal) error {
	_, err := proc.Restart(cfg.Name, name, filepath.Join(cfg.Dir(), "logs"), filepath.Join(cfg.Dir(), "run"), sig)
	return err
}

func (nsBackend) StopDaemon(_ context.Context, cfg config.Config, _, name string, sig syscall.Signal) error {
	return proc.Stop(name, filepath.Join(cfg.Dir(), "run"), sig)
}

func (nsBackend) ResumeDaemon(_ context.Context, cfg config.Config, _, name string) error {
	_, err := proc.StartAgain(cfg.Name, name, filepath.Join(cfg.Dir(), "logs"), filepath.Join(cfg.Dir(), "run"))
	return err
}

func nodeIndex(cfg config.Config, node string) (int, error) {
	for i := 1; i <= cfg.Nodes; i++ {
		if cfg.NodeName(i) == node {
			return i, nil
		}
	}
	return 0, fmt.Errorf("no node %q in lab %s", node, cfg.Name)
}

// execLocal runs argv in a namespace of this machine with the lab's binaries
// first on PATH.
func execLocal(ctx context.Context, cfg config.Config, ns string, argv []string) (ExecResult, error) {
	if len(argv) == 0 {
		return ExecResult{}, fmt.Errorf("exec: no command")
	}
	cmd, err := labns.Command(ns, argv[0], argv[1:]...)
	if err != nil {
		return ExecResult{}, err
	}
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	cmd.Env = append(os.Environ(), "PATH="+cfg.BinDir+":"+os.Getenv("PATH"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	res := ExecResult{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.ExitCode = ee.ExitCode()
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("exec in %s: %w", ns, err)
	}
	return res, nil
}
