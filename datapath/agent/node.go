package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// OverlayDevice is the collect_md VXLAN device of vxlan mode.
const OverlayDevice = "cnilab_vxlan"

// VXLANPort is the UDP port of the overlay (the Linux/Cilium/flannel default).
const VXLANPort = 8472

// vxlanOverhead is what the outer headers take from the MTU.
const vxlanOverhead = 50

func (a *Agent) waitOwnNode(ctx context.Context) error {
	if a.client == nil {
		return errors.New("agent: no Kubernetes client")
	}
	for {
		n, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		switch {
		case err == nil && n.Spec.PodCIDR != "":
			p, perr := netip.ParsePrefix(n.Spec.PodCIDR)
			if perr != nil || !p.Addr().Is4() {
				return fmt.Errorf("agent: node %s has an unusable podCIDR %q", a.cfg.NodeName, n.Spec.PodCIDR)
			}
			a.mu.Lock()
			a.podCIDR = p.Masked()
			a.gateway = p.Masked().Addr().Next()
			a.mu.Unlock()
			return nil
		case err == nil:
			a.log.Info("waiting for the node's podCIDR", "node", a.cfg.NodeName)
		case apierrors.IsNotFound(err):
			a.log.Info("waiting for the node object", "node", a.cfg.NodeName)
		default:
			a.log.Warn("get own node", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// setupNode gives the node the pods' gateway address and, in vxlan mode, the
// overlay device. Both are idempotent, so a restarted agent adopts them.
func (a *Agent) setupNode() error {
	under, err := netlink.LinkByName(a.cfg.UnderlayDevice)
	if err != nil {
		return fmt.Errorf("agent: underlay device %s: %w", a.cfg.UnderlayDevice, err)
	}
	a.underlay = under.Attrs().Index
	a.mtu = under.Attrs().MTU
	// Pods reach other nodes and the node itself through the node's routes.
	if changed, err := ensureSysctl("net.ipv4.ip_forward", "1"); err != nil {
		return fmt.Errorf("agent: %w", err)
	} else if changed {
		a.log.Info("enabled IPv4 forwarding", "sysctl", "net.ipv4.ip_forward")
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("agent: lo: %w", err)
	}
	gw := &netlink.Addr{IPNet: &net.IPNet{IP: a.gateway.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if err := netlink.AddrReplace(lo, gw); err != nil {
		return fmt.Errorf("agent: pod gateway %s on lo: %w", a.gateway, err)
	}
	if a.cfg.RoutingMode != RoutingVXLAN {
		return nil
	}
	a.mtu -= vxlanOverhead
	vx := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: OverlayDevice, MTU: a.mtu},
		FlowBased: true, Port: VXLANPort,
	}
	if err := netlink.LinkAdd(vx); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("agent: create %s: %w", OverlayDevice, err)
	}
	link, err := netlink.LinkByName(OverlayDevice)
	if err != nil {
		return fmt.Errorf("agent: %s: %w", OverlayDevice, err)
	}
	// The programs address every packet; the kernel need not resolve
	// neighbours on the overlay.
	if err := netlink.LinkSetARPOff(link); err != nil {
		return fmt.Errorf("agent: %s arp off: %w", OverlayDevice, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("agent: %s up: %w", OverlayDevice, err)
	}
	a.overlay = link.Attrs().Index
	return nil
}
