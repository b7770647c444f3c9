package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cnilab/cnilab/kernels"
	"github.com/cnilab/cnilab/lab/config"
	netnsprovider "github.com/cnilab/cnilab/lab/internal/providers/netns"
	qemuprovider "github.com/cnilab/cnilab/lab/internal/providers/qemu"
)

// withQEMU is an Option that sets up the qemu provider's settings, making
// them first where there are none.
func withQEMU(set func(q *config.QEMU)) Option {
	return func(c *config.Config) {
		if c.QEMU == nil {
			c.QEMU = &config.QEMU{}
		}
		set(c.QEMU)
	}
}

// WithKernel chooses, for the qemu provider, the catalog kernel the VMs boot
// (see `cnilab kernels list`).
func WithKernel(name string) Option {
	return withQEMU(func(q *config.QEMU) { q.Kernel = name })
}

// WithBootTimeout bounds, for the qemu provider, how long each VM may take to
// answer on its control channel.
func WithBootTimeout(seconds int) Option {
	return withQEMU(func(q *config.QEMU) { q.BootTimeout = seconds })
}

// WithQEMUArgs appends arguments to every VM's QEMU command line.
func WithQEMUArgs(args ...string) Option {
	return withQEMU(func(q *config.QEMU) { q.ExtraArgs = append(q.ExtraArgs, args...) })
}

// qemuAdapter makes labs whose nodes are VMs. Labs of every provider share
// one state layout, so finding and removing them is the netns adapter's.
type qemuAdapter struct {
	netnsAdapter
}

func (a *qemuAdapter) Name() string { return "qemu" }

func (a *qemuAdapter) Create(ctx context.Context, opts ...Option) (Cluster, error) {
	return a.create(ctx, "qemu", opts, func(cfg *config.Config) error {
		if cfg.QEMU == nil || cfg.QEMU.Kernel == "" {
			return fmt.Errorf("the qemu provider needs a kernel: --kernel NAME (see 'cnilab kernels list')")
		}
		k, err := fetchKernel(ctx, cfg.QEMU.Kernel, a.progress)
		if err != nil {
			return err
		}
		cfg.QEMU.Release, cfg.QEMU.Vmlinuz, cfg.QEMU.ModulesDir = k.Release, k.Vmlinuz, k.ModulesDir
		return nil
	})
}

func fetchKernel(ctx context.Context, name string, progress io.Writer) (kernels.Kernel, error) {
	if progress == nil {
		progress = io.Discard
	}
	cat, err := kernels.Load()
	if err != nil {
		return kernels.Kernel{}, err
	}
	e, err := cat.Find(name)
	if err != nil {
		return kernels.Kernel{}, err
	}
	k, err := kernels.Fetch(ctx, e, kernels.DefaultCacheDir(), progress)
	if err != nil {
		return kernels.Kernel{}, fmt.Errorf("kernel %s: %w", name, err)
	}
	if k.ModulesDir == "" {
		return kernels.Kernel{}, fmt.Errorf("kernel %s (%s) ships no modules: the qemu provider loads veth, vxlan, cls_bpf, … from them", name, k.Release)
	}
	return k, nil
}

// BootSeconds is how long each VM of a qemu lab took from QEMU's start to
// its init answering, by node; nil for other providers.
func BootSeconds(c Cluster) map[string]float64 {
	nc, ok := c.(*netnsCluster)
	if !ok || nc.Config().QEMU == nil {
		return nil
	}
	return qemuprovider.BootSeconds(nc.Config())
}

// labOf is the lab of this machine that runs c: c itself, or the lab behind
// an existing cluster that is one (see localLabRunner).
func labOf(c Cluster) Cluster {
	if b, ok := c.(interface{ backingLab() Cluster }); ok {
		return b.backingLab()
	}
	return c
}

// CollectLogs copies a lab's logs (control plane, node programs, VM consoles
// and the daemons inside the VMs) into dst: for a kind lab, kind's export of
// its nodes' logs; for an existing cluster that is a lab of this machine,
// that lab's.
func CollectLogs(ctx context.Context, c Cluster, dst string) error {
	if kc, ok := c.(*kindCluster); ok {
		return newKindAdapter(nil).p.CollectLogs(kc.Name(), dst)
	}
	nc, ok := labOf(c).(*netnsCluster)
	if !ok {
		return fmt.Errorf("provider %s keeps no logs here", c.Provider())
	}
	cfg := nc.Config()
	var errs []error
	if cfg.QEMU != nil {
		if err := qemuprovider.CollectGuestLogs(ctx, cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := netnsprovider.CopyLogs(cfg, dst); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ReadLog returns the log of one of the lab's daemons ("flanneld-NODE",
// "cnilab-agent-NODE", "node-role-NODE", "kube-apiserver", …), from the VM
// that runs it when the lab is a qemu lab and it runs there.
func ReadLog(ctx context.Context, c Cluster, node, daemon string) ([]byte, error) {
	nc, ok := labOf(c).(*netnsCluster)
	if !ok {
		return nil, fmt.Errorf("provider %s keeps no logs here", c.Provider())
	}
	cfg := nc.Config()
	if cfg.QEMU != nil && node != "" {
		return qemuprovider.ReadGuestLog(ctx, cfg, node, daemon)
	}
	b, err := os.ReadFile(filepath.Join(cfg.Dir(), "logs", filepath.Base(daemon)+".log"))
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", daemon, err)
	}
	return b, nil
}
