package qemu_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cnilab/cnilab/kernels"
	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/config"
)

// Each test brings up a one-node qemu lab that must fail in a bounded time
// with an error naming the problem, and leave nothing behind.

const testKernel = "6.12"

func requireQEMULab(t *testing.T) kernels.Kernel {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: a qemu lab makes namespaces and taps")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
	}
	bin, tools, _ := config.FindBinDirs()
	for _, p := range []string{filepath.Join(bin, "cnilab-init"), filepath.Join(bin, "cnilab"), filepath.Join(tools, "kube-apiserver")} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s not built: run 'make build tools'", p)
		}
	}
	cat, err := kernels.Load()
	if err != nil {
		t.Fatal(err)
	}
	e, err := cat.Find(testKernel)
	if err != nil {
		t.Fatal(err)
	}
	k, err := kernels.CachedKernel(e, kernels.DefaultCacheDir())
	if err != nil {
		t.Skipf("kernel %s is not fetched (run 'cnilab kernels fetch %s'): %v", testKernel, testKernel, err)
	}
	return k
}

func createFailing(t *testing.T, name string, within time.Duration, opts ...lab.Option) error {
	t.Helper()
	p, err := lab.NewProvider("qemu", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = p.Delete(name)
	t.Cleanup(func() {
		if err := p.Delete(name); err != nil {
			t.Errorf("delete lab %s: %v", name, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), within+time.Minute)
	defer cancel()
	start := time.Now()
	c, err := p.Create(ctx, append([]lab.Option{lab.WithName(name), lab.WithCNI("cnilab"), lab.WithNodes(1)}, opts...)...)
	if err == nil {
		t.Fatalf("lab %s came up (%s): want a failure", name, c.Kubeconfig())
	}
	if d := time.Since(start); d > within {
		t.Errorf("failure took %s, want within %s", d.Round(time.Second), within)
	}
	t.Logf("failed in %s: %v", time.Since(start).Round(100*time.Millisecond), err)
	return err
}

func TestKernelThatDoesNotBoot(t *testing.T) {
	requireQEMULab(t)
	// 160 MiB cannot hold the unpacked initramfs: the kernel panics, and
	// panic=-1 with -no-reboot makes QEMU exit.
	err := createFailing(t, "qfail-boot", 2*time.Minute, lab.WithKernel(testKernel), lab.WithQEMUArgs("-m", "160"))
	if !strings.Contains(err.Error(), "exited during boot") || !strings.Contains(err.Error(), "last lines of") {
		t.Fatalf("error does not say the VM exited, with its console: %v", err)
	}
}

func TestVMThatHangs(t *testing.T) {
	requireQEMULab(t)
	// -S: the VM's CPU never starts.
	err := createFailing(t, "qfail-hang", 90*time.Second, lab.WithKernel(testKernel), lab.WithQEMUArgs("-S"), lab.WithBootTimeout(20))
	if !strings.Contains(err.Error(), "did not answer on its control channel within 20s") {
		t.Fatalf("error does not name the hang: %v", err)
	}
}

func TestKernelMissingAModule(t *testing.T) {
	k := requireQEMULab(t)
	// The same kernel with every module but veth.
	root := filepath.Join(t.TempDir(), "modules", k.Release)
	err := filepath.WalkDir(k.ModulesDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(k.ModulesDir, p)
		dst := filepath.Join(root, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case strings.HasPrefix(d.Name(), "veth.ko"):
			return nil
		}
		return os.Symlink(p, dst)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CNILAB_KERNEL_VMLINUZ", k.Vmlinuz)
	t.Setenv("CNILAB_KERNEL_MODULES", root)
	err = createFailing(t, "qfail-mod", time.Minute, lab.WithKernel("local"))
	if !strings.Contains(err.Error(), "module veth not found") {
		t.Fatalf("error does not name the missing module: %v", err)
	}
}
