// Package qemu is the lab provider whose nodes are QEMU virtual machines
// booting a kernel from the catalog, from an initramfs built in Go (our init,
// the node programs, the kernel's own modules). The VMs' network cards are
// taps on the lab's underlay bridge, inside the lab's underlay namespace, so
// they share the L2 segment of the control plane and never touch an
// interface of the machine; there is no user-mode NAT. A virtio-serial port
// per VM is the control channel (package guest): the lab starts the node
// role and the CNI's node programs through it, runs probes, and reads files
// and logs. Everything else (underlay, control plane, node role, CNI
// installers) is the netns provider's, unchanged.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/lab/internal/cni"
	"github.com/cnilab/cnilab/lab/internal/guest"
	nsprovider "github.com/cnilab/cnilab/lab/internal/providers/netns"
)

// Backend is the VM node backend the engine (package netns) runs qemu labs
// with.
func Backend() nsprovider.NodeBackend { return backend{} }

// Paths of the node programs inside a guest.
const (
	guestBin    = "/cnilab/bin"
	guestTools  = "/cnilab/tools/bin"
	guestCNIBin = "/cnilab/tools/cni/bin"
	guestPath   = "PATH=" + guestBin + ":" + guestTools + ":" + guestCNIBin + ":/usr/sbin:/usr/bin:/sbin:/bin"
)

// Defaults for the VMs.
const (
	DefaultMemoryMiB   = 1536
	DefaultCPUs        = 1
	DefaultBootTimeout = 180 // seconds; TCG boots a Debian kernel in ~10 s
)

type backend struct{}

// nodeDir is where the host keeps a VM's sockets and files.
func nodeDir(cfg config.Config, node string) string { return nsprovider.NodeDir(cfg, node) }

func client(cfg config.Config, node string) *guest.Client {
	return &guest.Client{Socket: filepath.Join(nodeDir(cfg, node), "ctl.sock"), Node: node}
}

func (backend) Preflight(cfg config.Config) error {
	if cfg.QEMU == nil {
		return fmt.Errorf("the qemu provider needs a kernel")
	}
	if _, err := exec.LookPath(qemuBinary); err != nil {
		return fmt.Errorf("%s not found: install qemu-system-x86 (apt-get install qemu-system-x86)", qemuBinary)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("the qemu provider needs /dev/net/tun for the VMs' underlay taps: %w", err)
	}
	for _, p := range []string{cfg.QEMU.Vmlinuz, cfg.QEMU.ModulesDir, filepath.Join(cfg.BinDir, "cnilab-init")} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("qemu provider: %w (run 'make build' for cnilab-init, 'cnilab kernels fetch %s' for the kernel)", err, cfg.QEMU.Kernel)
		}
	}
	return nil
}

func (backend) Nodes(cfg config.Config) []cni.Node {
	var out []cni.Node
	for i := 1; i <= cfg.Nodes; i++ {
		name := cfg.NodeName(i)
		out = append(out, cni.Node{Name: name, IP: cfg.NodeIP(i).String(), Dir: "/",
			ConfDir: "/etc/cni/net.d", LogDir: filepath.Join(cfg.Dir(), "logs"),
			Host: guestHost{c: client(cfg, name)}})
	}
	return out
}

func (backend) Paths(config.Config) (string, string, string) {
	return guestBin, guestTools, guestCNIBin
}

func (backend) ExecIn(ctx context.Context, cfg config.Config, node, netns string, argv []string) (nsprovider.ExecResult, error) {
	r, err := client(cfg, node).Exec(ctx, netns, argv, guestPath)
	return nsprovider.ExecResult(r), err
}

func (backend) RestartDaemon(ctx context.Context, cfg config.Config, node, name string, sig syscall.Signal) error {
	_, err := client(cfg, node).Restart(ctx, name, sig)
	return err
}

func (backend) StopDaemon(ctx context.Context, cfg config.Config, node, name string, sig syscall.Signal) error {
	return client(cfg, node).Stop(ctx, name, sig)
}

func (backend) ResumeDaemon(ctx context.Context, cfg config.Config, node, name string) error {
	_, err := client(cfg, node).Resume(ctx, name)
	return err
}

// guestHost is a VM as the CNI installers and the node role see it.
type guestHost struct{ c *guest.Client }

func (h guestHost) WriteFile(ctx context.Context, path string, data []byte, mode os.FileMode) error {
	return h.c.WriteFile(ctx, path, data, mode)
}

func (h guestHost) ReadFile(ctx context.Context, path string) ([]byte, error) {
	return h.c.ReadFile(ctx, path)
}

func (h guestHost) Start(ctx context.Context, name string, argv, env []string) error {
	_, err := h.c.Start(ctx, name, "", argv, append([]string{guestPath}, env...)...)
	return err
}

// GuestIsolation runs the isolation check inside every VM: the node's own
// namespace and its pod namespaces.
func (backend) GuestIsolation(cfg config.Config) error {
	var errs []error
	for i := 1; i <= cfg.Nodes; i++ {
		node := cfg.NodeName(i)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		r, err := client(cfg, node).Exec(ctx, "", []string{filepath.Join(guestBin, "cnilab"), "lab", "check-isolation",
			"--name", cfg.Name, "--underlay", cfg.Underlay, "--cluster-cidr", cfg.ClusterCIDR}, guestPath)
		cancel()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", node, err))
		case r.ExitCode != 0:
			errs = append(errs, fmt.Errorf("%s: %s", node, strings.TrimSpace(string(r.Stderr)+string(r.Stdout))))
		}
	}
	return errors.Join(errs...)
}
