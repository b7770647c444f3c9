package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// hook is one side of an interface's tc layer.
type hook struct {
	name     string          // in pin names and errors
	tcx      ebpf.AttachType // TCX attach type
	tcParent uint32          // clsact parent for cls_bpf
}

var (
	ingress = hook{"ingress", ebpf.AttachTCXIngress, netlink.HANDLE_MIN_INGRESS}
	egress  = hook{"egress", ebpf.AttachTCXEgress, netlink.HANDLE_MIN_EGRESS}
)

// The cls_bpf filter cnilab owns on each hook in tc mode. A fixed handle and
// priority let a new agent replace the program atomically.
const (
	tcHandle   = 1
	tcPriority = 1
	tcPrefix   = "cnilab_"
)

// AttachEndpoint attaches cnilab_from_container to the ingress and
// cnilab_to_container to the egress of a pod's host-side veth. Attaching
// again replaces the programs in place.
func (d *Datapath) AttachEndpoint(ifindex int) error {
	return d.attachAll(ifindex,
		attachment{ingress, d.objs.CnilabFromContainer, datapathProgCnilabFromContainer},
		attachment{egress, d.objs.CnilabToContainer, datapathProgCnilabToContainer})
}

// AttachOverlay attaches cnilab_from_overlay to the ingress and
// cnilab_to_overlay to the egress of the collect_md VXLAN device.
func (d *Datapath) AttachOverlay(ifindex int) error {
	return d.attachAll(ifindex,
		attachment{ingress, d.objs.CnilabFromOverlay, datapathProgCnilabFromOverlay},
		attachment{egress, d.objs.CnilabToOverlay, datapathProgCnilabToOverlay})
}

// AttachNetdev attaches cnilab_from_netdev to the ingress and
// cnilab_to_netdev to the egress of the node's underlay device.
func (d *Datapath) AttachNetdev(ifindex int) error {
	return d.attachAll(ifindex,
		attachment{ingress, d.objs.CnilabFromNetdev, datapathProgCnilabFromNetdev},
		attachment{egress, d.objs.CnilabToNetdev, datapathProgCnilabToNetdev})
}

// DetachEndpoint removes cnilab's programs from both hooks of ifindex (in
// either attach mode, so it also serves the overlay and underlay devices).
// A device that is already gone is not an error.
func (d *Datapath) DetachEndpoint(ifindex int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("detach %d: %w", ifindex, ErrClosed)
	}
	var errs []error
	for _, h := range []hook{ingress, egress} {
		errs = append(errs, d.detachTCX(ifindex, h), detachTC(ifindex, h))
	}
	return errors.Join(errs...)
}

type attachment struct {
	hook hook
	prog *ebpf.Program
	name string // full program name (the kernel keeps 15 characters)
}

func (d *Datapath) attachAll(ifindex int, as ...attachment) error {
	if ifindex <= 0 {
		return fmt.Errorf("attach: bad ifindex %d", ifindex)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("attach %d: %w", ifindex, ErrClosed)
	}
	for _, a := range as {
		var err error
		switch d.attach {
		case AttachTCX:
			if err = d.attachTCX(ifindex, a.hook, a.prog); err == nil {
				// Left over from an agent that ran in tc mode.
				_ = detachTC(ifindex, a.hook)
			}
		default:
			if err = attachTC(ifindex, a.hook, a.prog, a.name); err == nil {
				_ = d.detachTCX(ifindex, a.hook)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *Datapath) pinOf(ifindex int, h hook) string {
	return filepath.Join(d.linkDir, fmt.Sprintf("%d-%s", ifindex, h.name))
}

// attachTCX updates the pinned link of (ifindex, hook) to prog, or creates
// and pins one. A pinned link whose device is gone (or is another device now)
// is replaced.
func (d *Datapath) attachTCX(ifindex int, h hook, prog *ebpf.Program) error {
	pin := d.pinOf(ifindex, h)
	var live link.Link // a pinned link on this hook whose update failed
	old, err := link.LoadPinnedLink(pin, nil)
	switch {
	case err == nil:
		defer old.Close()
		if !tcxLinkOn(old, ifindex, h) {
			_ = old.Unpin() // stale: its device is gone
			break
		}
		if err := old.Update(prog); err == nil {
			return nil
		}
		live = old // keep it until the new link is in: no gap
	case errors.Is(err, os.ErrNotExist):
	default:
		_ = os.Remove(pin) // not a link: replace the pin
	}

	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: h.tcx})
	if err != nil {
		return fmt.Errorf("attach tcx to ifindex %d %s: %w", ifindex, h.name, err)
	}
	defer l.Close()
	if live != nil {
		_ = live.Unpin()
		_ = live.Detach()
	}
	if err := l.Pin(pin); err != nil {
		return fmt.Errorf("attach tcx to ifindex %d %s: pin: %w", ifindex, h.name, err)
	}
	return nil
}

// tcxLinkOn tells whether l is a live TCX link on (ifindex, hook).
func tcxLinkOn(l link.Link, ifindex int, h hook) bool {
	info, err := l.Info()
	if err != nil {
		return false
	}
	tcx := info.TCX()
	return tcx != nil && int(tcx.Ifindex) == ifindex && ebpf.AttachType(tcx.AttachType) == h.tcx
}

func (d *Datapath) detachTCX(ifindex int, h hook) error {
	pin := d.pinOf(ifindex, h)
	l, err := link.LoadPinnedLink(pin, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		if rmErr := os.Remove(pin); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			return fmt.Errorf("detach tcx from ifindex %d %s: %w", ifindex, h.name, rmErr)
		}
		return nil
	}
	defer l.Close()
	_ = l.Detach() // fails harmlessly on a link whose device is gone
	if err := l.Unpin(); err != nil {
		return fmt.Errorf("detach tcx from ifindex %d %s: %w", ifindex, h.name, err)
	}
	return nil
}

// attachTC makes sure the device has a clsact qdisc and replaces cnilab's
// cls_bpf filter on the hook with prog (atomically, in the kernel).
func attachTC(ifindex int, h hook, prog *ebpf.Program, name string) error {
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{
			LinkIndex: ifindex,
			Handle:    netlink.MakeHandle(0xffff, 0),
			Parent:    netlink.HANDLE_CLSACT,
		},
		QdiscType: "clsact",
	}
	if err := netlink.QdiscAdd(qdisc); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("attach tc to ifindex %d %s: add clsact qdisc: %w", ifindex, h.name, err)
	}
	filter := tcFilter(ifindex, h)
	filter.Fd = prog.FD()
	filter.Name = name
	filter.DirectAction = true
	if err := netlink.FilterReplace(filter); err != nil {
		return fmt.Errorf("attach tc to ifindex %d %s: %w", ifindex, h.name, err)
	}
	return nil
}

func tcFilter(ifindex int, h hook) *netlink.BpfFilter {
	return &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{
		LinkIndex: ifindex,
		Parent:    h.tcParent,
		Handle:    tcHandle,
		Protocol:  unix.ETH_P_ALL,
		Priority:  tcPriority,
	}}
}

// detachTC deletes cnilab's cls_bpf filter from the hook, if there is one.
func detachTC(ifindex int, h hook) error {
	filters, err := tcFilters(ifindex, h)
	if err != nil || len(filters) == 0 {
		return nil // no device, no clsact, nothing of ours
	}
	if err := netlink.FilterDel(tcFilter(ifindex, h)); err != nil &&
		!errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("detach tc from ifindex %d %s: %w", ifindex, h.name, err)
	}
	return nil
}

// tcFilters lists cnilab's cls_bpf filters on a hook.
func tcFilters(ifindex int, h hook) ([]*netlink.BpfFilter, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil, err
	}
	all, err := netlink.FilterList(l, h.tcParent)
	if err != nil {
		return nil, err
	}
	var ours []*netlink.BpfFilter
	for _, f := range all {
		bf, ok := f.(*netlink.BpfFilter)
		if ok && bf.Handle == tcHandle && bf.Priority == tcPriority && strings.HasPrefix(bf.Name, tcPrefix) {
			ours = append(ours, bf)
		}
	}
	return ours, nil
}
