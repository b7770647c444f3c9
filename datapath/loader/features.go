package loader

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Features are what the running kernel offers the datapath, found by probing
// (loading and attaching small programs), never from the version string.
type Features struct {
	// TCX: BPF links on the tc ingress/egress hooks (Linux 6.6+).
	TCX bool
	// RedirectPeer: the bpf_redirect_peer helper (Linux 5.10+).
	RedirectPeer bool
	// RedirectNeigh: the bpf_redirect_neigh helper (Linux 5.10+).
	RedirectNeigh bool
	// RingBuf: BPF ring buffer maps (Linux 5.8+).
	RingBuf bool
	// Kernel is the kernel release (uname -r), for reports only.
	Kernel string
}

func (f Features) String() string {
	return fmt.Sprintf("kernel=%s tcx=%t redirect_peer=%t redirect_neigh=%t ringbuf=%t", f.Kernel, f.TCX, f.RedirectPeer, f.RedirectNeigh, f.RingBuf)
}

var probeOnce = sync.OnceValue(probeFeatures)

// ProbeFeatures probes the kernel once per process and returns the result.
// The TCX probe attaches a pass-through program to the loopback device of
// the calling thread's network namespace for a moment.
func ProbeFeatures() Features { return probeOnce() }

func probeFeatures() Features {
	_ = rlimit.RemoveMemlock() // needed before Linux 5.11 (memlock accounting)
	var f Features
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		f.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	f.TCX = probeTCX() == nil
	f.RedirectPeer = features.HaveProgramHelper(ebpf.SchedCLS, asm.FnRedirectPeer) == nil
	f.RedirectNeigh = features.HaveProgramHelper(ebpf.SchedCLS, asm.FnRedirectNeigh) == nil
	f.RingBuf = features.HaveMapType(ebpf.RingBuf) == nil
	return f
}

// probeTCX attaches a program returning TCX_NEXT to lo's ingress and detaches
// it again.
func probeTCX() error {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return fmt.Errorf("probe tcx: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:    "cnilab_probe",
		Type:    ebpf.SchedCLS,
		License: "Dual MIT/GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, -1), // TCX_NEXT
			asm.Return(),
		},
	})
	if err != nil {
		return fmt.Errorf("probe tcx: load program: %w", err)
	}
	defer prog.Close()
	l, err := link.AttachTCX(link.TCXOptions{Interface: lo.Index, Program: prog, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("probe tcx: %w", ErrNotSupported)
		}
		return fmt.Errorf("probe tcx: %w", err)
	}
	return l.Close()
}
