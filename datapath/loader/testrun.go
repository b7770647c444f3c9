package loader

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Hook names a program of the datapath for RunPacket.
type Hook string

// The hooks RunPacket can run.
const (
	HookFromContainer Hook = "from-container" // a pod's host-side veth, packets the pod sends
	HookToContainer   Hook = "to-container"
	HookFromNetdev    Hook = "from-netdev"
	HookFromOverlay   Hook = "from-overlay"
)

// TC actions RunPacket returns.
const (
	ActionOK       uint32 = 0 // TC_ACT_OK: on to the stack
	ActionShot     uint32 = 2 // TC_ACT_SHOT: dropped
	ActionRedirect uint32 = 7 // TC_ACT_REDIRECT: redirected (to a local pod, or the tunnel)
)

// runCtx is the start of struct __sk_buff up to ingress_ifindex, the
// context BPF_PROG_TEST_RUN takes (the kernel zero-fills the rest).
type runCtx struct {
	_              [9]uint32
	IngressIfindex uint32
}

// RunPacket runs one program on pkt (an Ethernet frame) with
// BPF_PROG_TEST_RUN, as if the frame had entered the device ingressIfindex,
// and returns the program's TC action. It reads and writes the same maps as
// the attached programs (conntrack entries, counters, flow events): it is
// for tests and benchmarks on a datapath of their own.
func (d *Datapath) RunPacket(h Hook, pkt []byte, ingressIfindex uint32) (uint32, error) {
	var prog *ebpf.Program
	switch h {
	case HookFromContainer:
		prog = d.objs.CnilabFromContainer
	case HookToContainer:
		prog = d.objs.CnilabToContainer
	case HookFromNetdev:
		prog = d.objs.CnilabFromNetdev
	case HookFromOverlay:
		prog = d.objs.CnilabFromOverlay
	default:
		return 0, fmt.Errorf("run packet: unknown hook %q", h)
	}
	ret, err := prog.Run(&ebpf.RunOptions{
		Data:    pkt,
		DataOut: make([]byte, len(pkt)+256),
		Context: runCtx{IngressIfindex: ingressIfindex},
	})
	if err != nil {
		return 0, fmt.Errorf("run packet through %s: %w", h, err)
	}
	return ret, nil
}
