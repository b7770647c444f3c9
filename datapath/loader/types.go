package loader

import (
	"errors"
	"fmt"
	"net"
)

// RoutingMode is how traffic reaches pods on other nodes.
type RoutingMode int

const (
	// Native leaves cross-node traffic to kernel routes (remote PodCIDR via
	// the remote node's underlay IP on a shared L2).
	Native RoutingMode = 0
	// VXLAN encapsulates cross-node traffic on a collect_md VXLAN device,
	// with the tunnel endpoint taken from the remote map.
	VXLAN RoutingMode = 1
)

func (m RoutingMode) String() string {
	switch m {
	case Native:
		return "native"
	case VXLAN:
		return "vxlan"
	}
	return fmt.Sprintf("RoutingMode(%d)", int(m))
}

// AttachMode is how programs are hooked into interfaces.
type AttachMode string

const (
	// AttachTCX uses TCX links (Linux 6.6+), pinned so they outlive the agent.
	AttachTCX AttachMode = "tcx"
	// AttachTC uses a clsact qdisc and a cls_bpf direct-action filter.
	AttachTC AttachMode = "tc"
)

// AttachEnv names the environment variable that, when set to "tc" or "tcx",
// overrides Options.Attach and the probe.
const AttachEnv = "CNILAB_ATTACH"

// ErrNotSupported is wrapped by errors about features the kernel lacks.
var ErrNotSupported = errors.New("not supported by this kernel")

// DefaultVNI is the VXLAN network identifier used when Options.VNI is 0.
const DefaultVNI = 2

// EndpointInfo is a local pod as the datapath sees it.
type EndpointInfo struct {
	// Ifindex of the host-side veth (lxc…) in the node's namespace.
	Ifindex int
	// PodMAC is the MAC of the pod's eth0, HostMAC the host-side veth's.
	PodMAC, HostMAC net.HardwareAddr
}
