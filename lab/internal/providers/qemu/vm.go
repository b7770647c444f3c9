package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/lab/internal/initramfs"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
	"github.com/cnilab/cnilab/lab/internal/proc"
	nsprovider "github.com/cnilab/cnilab/lab/internal/providers/netns"
)

const qemuBinary = "qemu-system-x86_64"

// underlayBridge is the netns provider's bridge in the underlay namespace.
const underlayBridge = "br0"

// accel picks KVM when /dev/kvm can be opened, TCG otherwise.
func accel() (accel, cpu string) {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		f.Close()
		return "kvm", "host"
	}
	return "tcg", "max"
}

func tapName(i int) string { return fmt.Sprintf("tap-node-%d", i) }

// CreateNodes builds the guest initramfs (cached per kernel and binaries)
// and starts one relay and one VM per node; WaitNodes waits for them.
func (backend) CreateNodes(ctx context.Context, cfg config.Config, progress io.Writer) error {
	q := cfg.QEMU
	var hostProgs []initramfs.HostProgram
	if cfg.CNI == "flannel" || !cfg.NoKubeProxy {
		// flanneld sets up its forward and masquerade rules with iptables,
		// kube-proxy its Service rules.
		ipt, err := initramfs.IptablesProgram()
		if err != nil {
			return err
		}
		hostProgs = append(hostProgs, ipt)
	}
	spec, err := initramfs.GuestSpec(initramfs.GuestOptions{
		Init:         filepath.Join(cfg.BinDir, "cnilab-init"),
		BinDir:       cfg.BinDir,
		ToolsDir:     cfg.ToolsDir,
		CNIBinDir:    cfg.CNIBinDir,
		ModulesDir:   q.ModulesDir,
		Release:      q.Release,
		Modules:      initramfs.DefaultModules,
		CacheDir:     filepath.Join(filepath.Dir(cfg.BinDir), "initramfs"),
		HostPrograms: hostProgs,
		KubeProxy:    !cfg.NoKubeProxy,
	})
	if err != nil {
		return fmt.Errorf("initramfs for kernel %s: %w", q.Kernel, err)
	}
	start := time.Now()
	archive, err := initramfs.Build(spec)
	if err != nil {
		return fmt.Errorf("initramfs for kernel %s: %w", q.Kernel, err)
	}
	fmt.Fprintf(progress, "   initramfs %s (%.1fs)\n", archive, time.Since(start).Seconds())
	acc, cpu := accel()
	fmt.Fprintf(progress, "   booting %d VMs with kernel %s (%s) under %s\n", cfg.Nodes, q.Kernel, q.Release, acc)
	logs := filepath.Join(cfg.Dir(), "logs")
	run := filepath.Join(cfg.Dir(), "run")
	for i := 1; i <= cfg.Nodes; i++ {
		name := cfg.NodeName(i)
		dir := nodeDir(cfg, name)
		if err := os.MkdirAll(filepath.Join(dir, "run", "cnilab"), 0o700); err != nil {
			return err
		}
		port := filepath.Join(dir, "port.sock")
		relay, err := labns.Command(cfg.UnderlayNetns(), filepath.Join(cfg.BinDir, "cnilab"), "lab", "guest-relay",
			"--port", port, "--socket", filepath.Join(dir, "ctl.sock"),
			"--forward", filepath.Join(dir, "run", "cnilab", "agent.sock")+"=unix:/run/cnilab/agent.sock")
		if err != nil {
			return err
		}
		mem, cpus := q.MemoryMiB, q.CPUs
		if mem == 0 {
			mem = DefaultMemoryMiB
		}
		if cpus == 0 {
			cpus = DefaultCPUs
		}
		args := []string{
			"-name", "cnilab-" + name,
			"-machine", "q35,accel=" + acc, "-cpu", cpu,
			"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
			"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
			"-kernel", q.Vmlinuz, "-initrd", archive,
			// tsc=reliable: a guest starved by a busy host (TCG, 2 cores)
			// otherwise sees its TSC "drift" against the HPET, marks it
			// unstable and switches to the HPET, which TCG emulates so
			// slowly that the rest of the run times out. The guest's TSC is
			// QEMU's monotonic clock: it is reliable.
			"-append", fmt.Sprintf("console=ttyS0 panic=-1 tsc=reliable cnilab.ip=%s/%d cnilab.hostname=%s cnilab.svc=%s", cfg.NodeIP(i), cfg.UnderlayPrefix(), name, cfg.ServiceCIDR),
			"-serial", "file:" + filepath.Join(logs, "console-"+name+".log"),
			// The VM's only network card: a tap on the underlay bridge, made
			// by QEMU in the underlay namespace it runs in.
			"-netdev", "tap,id=underlay,ifname=" + tapName(i) + ",script=no,downscript=no",
			"-device", fmt.Sprintf("virtio-net-pci,netdev=underlay,mac=52:54:00:30:00:%02x", i),
			"-device", "virtio-rng-pci",
			"-device", "virtio-serial-pci",
			"-chardev", "socket,id=ctl,path=" + port + ",server=on,wait=off",
			"-device", "virtserialport,chardev=ctl,name=cnilab.ctl",
		}
		args = append(args, q.ExtraArgs...)
		vm, err := labns.Command(cfg.UnderlayNetns(), qemuBinary, args...)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(logs, 0o755); err != nil {
			return err
		}
		if _, err := proc.Start(proc.Spec{Lab: cfg.Name, Name: "qemu-" + name, Cmd: vm, LogDir: logs, PidDir: run}); err != nil {
			return err
		}
		if _, err := proc.Start(proc.Spec{Lab: cfg.Name, Name: "guest-relay-" + name, Cmd: relay, LogDir: logs, PidDir: run}); err != nil {
			return err
		}
	}
	return nil
}

// attachTap puts node i's tap on the underlay bridge once QEMU made it.
func attachTap(cfg config.Config, i int) (bool, error) {
	h, err := labns.Handle(cfg.UnderlayNetns())
	if err != nil {
		return false, err
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return false, err
	}
	defer nh.Close()
	tap, err := nh.LinkByName(tapName(i))
	if err != nil {
		return false, nil // not made yet
	}
	if tap.Attrs().MasterIndex != 0 {
		return true, nil
	}
	br, err := nh.LinkByName(underlayBridge)
	if err != nil {
		return false, fmt.Errorf("underlay bridge: %w", err)
	}
	if err := nh.LinkSetMaster(tap, br); err != nil {
		return false, fmt.Errorf("attach %s to %s: %w", tapName(i), underlayBridge, err)
	}
	if err := nh.LinkSetUp(tap); err != nil {
		return false, fmt.Errorf("set %s up: %w", tapName(i), err)
	}
	return true, nil
}

// BootInfo is what the lab learned about a VM's boot.
type BootInfo struct {
	Seconds       float64  `json:"seconds"` // QEMU start to control channel answering
	Release       string   `json:"release"`
	ModulesFailed []string `json:"modulesFailed,omitempty"`
	ModulesLoaded []string `json:"modulesLoaded,omitempty"`
}

// BootFile is where a node's BootInfo is kept (host path).
func BootFile(cfg config.Config, node string) string {
	return filepath.Join(nodeDir(cfg, node), "boot.json")
}

// WaitNodes waits until every VM's tap is on the bridge and its init answers
// on the control channel, for at most the boot timeout. A VM that exits
// (kernel panic: panic=-1 and -no-reboot) or does not answer in time fails
// with the tail of its console.
func (backend) WaitNodes(ctx context.Context, cfg config.Config, progress io.Writer) error {
	timeout := time.Duration(cfg.QEMU.BootTimeout) * time.Second
	if timeout == 0 {
		timeout = DefaultBootTimeout * time.Second
	}
	started := time.Now()
	if st, err := os.Stat(filepath.Join(cfg.Dir(), "run", "qemu-"+cfg.NodeName(1)+".pid")); err == nil {
		started = st.ModTime()
	}
	deadline := started.Add(timeout)
	for i := 1; i <= cfg.Nodes; i++ {
		name := cfg.NodeName(i)
		attached := false
		for {
			if !attached {
				ok, err := attachTap(cfg, i)
				if err != nil {
					return fmt.Errorf("node %s: %w", name, err)
				}
				attached = ok
			}
			if !vmAlive(cfg, name) {
				return fmt.Errorf("VM %s (kernel %s) exited during boot%s", name, cfg.QEMU.Release, consoleTail(cfg, name))
			}
			if attached {
				pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				r, err := client(cfg, name).Ping(pctx)
				cancel()
				if err == nil {
					info := BootInfo{Seconds: time.Since(started).Seconds(), Release: r.Release}
					if len(r.InitStatus) > 0 {
						var st struct {
							ModulesFailed []string `json:"modulesFailed"`
							ModulesLoaded []string `json:"modulesLoaded"`
						}
						_ = json.Unmarshal(r.InitStatus, &st)
						info.ModulesFailed, info.ModulesLoaded = st.ModulesFailed, st.ModulesLoaded
					}
					if b, err := json.Marshal(info); err == nil {
						_ = os.WriteFile(BootFile(cfg, name), b, 0o644)
					}
					fmt.Fprintf(progress, "   %s up in %.1fs (kernel %s)\n", name, info.Seconds, r.Release)
					if r.Release != cfg.QEMU.Release && cfg.QEMU.Release != "" {
						return fmt.Errorf("VM %s booted kernel %s, not %s", name, r.Release, cfg.QEMU.Release)
					}
					if failed := required(info.ModulesFailed); len(failed) > 0 {
						return fmt.Errorf("VM %s (kernel %s): modules failed to load: %s%s", name, r.Release, strings.Join(failed, ", "), consoleTail(cfg, name))
					}
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("VM %s (kernel %s) did not answer on its control channel within %s%s", name, cfg.QEMU.Release, timeout, consoleTail(cfg, name))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil
}

// required drops the modules a lab can do without (SCTP: its specs skip).
func required(failed []string) []string {
	var out []string
	for _, m := range failed {
		if !strings.HasPrefix(m, "sctp") && !strings.HasPrefix(m, "libcrc32c") {
			out = append(out, m)
		}
	}
	return out
}

func vmAlive(cfg config.Config, node string) bool {
	b, err := os.ReadFile(filepath.Join(cfg.Dir(), "run", "qemu-"+node+".pid"))
	if err != nil {
		return false
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return proc.Alive(pid)
}

// consoleTail is the end of a VM's console and QEMU's own log, for errors.
func consoleTail(cfg config.Config, node string) string {
	var parts []string
	for _, f := range []string{"console-" + node + ".log", "qemu-" + node + ".log"} {
		p := filepath.Join(cfg.Dir(), "logs", f)
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) || len(b) == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("\n--- last lines of %s ---\n%s", p, strings.Join(nsprovider.LastLines(b, 12), "\n")))
	}
	return strings.Join(parts, "")
}

// BootSeconds reads every node's recorded boot time.
func BootSeconds(cfg config.Config) map[string]float64 {
	out := map[string]float64{}
	for i := 1; i <= cfg.Nodes; i++ {
		b, err := os.ReadFile(BootFile(cfg, cfg.NodeName(i)))
		if err != nil {
			continue
		}
		var info BootInfo
		if json.Unmarshal(b, &info) == nil {
			out[cfg.NodeName(i)] = info.Seconds
		}
	}
	return out
}

// CollectLogs implements the netns provider's log collection for VMs.
func (backend) CollectLogs(ctx context.Context, cfg config.Config) error {
	return CollectGuestLogs(ctx, cfg)
}

// CollectGuestLogs copies the logs of the daemons the lab started in each VM
// (node role, cnilab agent or flanneld) into the lab's log directory.
func CollectGuestLogs(ctx context.Context, cfg config.Config) error {
	var errs []error
	for i := 1; i <= cfg.Nodes; i++ {
		node := cfg.NodeName(i)
		c := client(cfg, node)
		for _, d := range []string{"node-role-", "cnilab-agent-", "flanneld-", "kube-proxy-"} {
			b, err := c.ReadFile(ctx, filepath.Join("/var/log/cnilab", d+node+".log"))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				errs = append(errs, err)
				break // the guest does not answer: its other logs will not come either
			}
			if err := os.WriteFile(filepath.Join(cfg.Dir(), "logs", d+node+".log"), b, 0o644); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ReadGuestLog returns the log of a daemon the lab started in node's VM.
func ReadGuestLog(ctx context.Context, cfg config.Config, node, daemon string) ([]byte, error) {
	return client(cfg, node).ReadFile(ctx, filepath.Join("/var/log/cnilab", daemon+".log"))
}
