package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Options configure a node's datapath.
type Options struct {
	// PinPath is the node's directory for pinned maps and links. It must be
	// on a bpffs; when it is not, Load mounts one there.
	PinPath string
	// Mode is the cross-node routing mode.
	Mode RoutingMode
	// VXLANIfindex is the collect_md VXLAN device (required in VXLAN mode).
	VXLANIfindex int
	// UnderlayIfindex is the node's device toward the other nodes: native
	// routing forwards pod traffic for other nodes out of it with
	// bpf_redirect_neigh, past the node's stack (0: the stack forwards it).
	UnderlayIfindex int
	// ServiceCIDR is the cluster's Service network: a pod's packets to it go
	// to the node's stack (kube-proxy translates them) and their policy is
	// checked after translation. The zero Prefix means none.
	ServiceCIDR netip.Prefix
	// VNI is the VXLAN network identifier; 0 means DefaultVNI.
	VNI uint32
	// Attach forces an attach mode; "" chooses by probe. The environment
	// variable CNILAB_ATTACH (tc or tcx), when set, overrides it.
	Attach AttachMode
	// NoRedirectPeer delivers to pods with bpf_redirect even where
	// bpf_redirect_peer exists (for comparisons).
	NoRedirectPeer bool
	// Conntrack are the idle timeouts GCConntrack applies; zero fields
	// take DefaultConntrackTimeouts'.
	Conntrack ConntrackTimeouts
	// NoEvents turns flow events off (they are on by default): the
	// programs then write nothing to the ring buffer, and the verifier
	// removes that code. The counters count anyway. For measuring what
	// events cost.
	NoEvents bool

	// eventsSize overrides the ring buffer's size in bytes (a power of two,
	// at least a page): tests only, on a pin path of their own.
	eventsSize uint32
}

// Datapath is the loaded datapath of one node. Its methods are safe for
// concurrent use.
type Datapath struct {
	objs     datapathObjects
	opts     Options
	features Features
	attach   AttachMode
	linkDir  string
	mu       sync.Mutex // serialises attach and detach
	epMu     sync.Mutex // serialises endpoint writes (endpoint + veth owner)
	polMu    sync.Mutex // guards policies and serialises policy writes
	// closed is set by Close under mu, epMu and polMu: a write that holds
	// its lock either finished before Close or sees closed and does nothing.
	closed bool
	// policies mirrors cnilab_policy by endpoint (network byte order); nil
	// until first read.
	policies map[uint32]policySet
	// boot is the wall-clock time of the kernel's monotonic clock's zero,
	// measured at Load: the offset of flow event times.
	boot     time.Time
	eventsMu sync.Mutex // held by ReadEvents
}

const linksDir = "links"

// Load loads the programs with the node's configuration and opens the pinned
// maps under opts.PinPath, creating them if absent: entries written by an
// earlier agent are kept (endpoints, remotes, identities, policy, and the
// tracked connections).
func Load(opts Options) (*Datapath, error) {
	if opts.PinPath == "" {
		return nil, errors.New("load datapath: no pin path")
	}
	switch opts.Mode {
	case Native:
	case VXLAN:
		if opts.VXLANIfindex <= 0 {
			return nil, errors.New("load datapath: vxlan mode needs the VXLAN device's ifindex")
		}
	default:
		return nil, fmt.Errorf("load datapath: unknown routing mode %d", int(opts.Mode))
	}
	if opts.VNI == 0 {
		opts.VNI = DefaultVNI
	}
	if opts.ServiceCIDR.IsValid() && !opts.ServiceCIDR.Addr().Is4() {
		return nil, fmt.Errorf("load datapath: service CIDR %s is not IPv4", opts.ServiceCIDR)
	}
	if opts.VNI >= 1<<24 {
		return nil, fmt.Errorf("load datapath: VNI %d out of range", opts.VNI)
	}
	opts.Conntrack = opts.Conntrack.withDefaults()
	if err := ensureBPFFS(opts.PinPath); err != nil {
		return nil, fmt.Errorf("load datapath: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("load datapath: %w", err)
	}
	feat := ProbeFeatures()
	attach, err := chooseAttach(opts.Attach, feat)
	if err != nil {
		return nil, fmt.Errorf("load datapath: %w", err)
	}

	spec, err := loadDatapath()
	if err != nil {
		return nil, err
	}
	var vars datapathVariableSpecs
	if err := spec.Assign(&vars); err != nil {
		return nil, fmt.Errorf("load datapath: %w", err)
	}
	peer := uint32(0)
	if feat.RedirectPeer && !opts.NoRedirectPeer {
		peer = 1
	}
	neigh := uint32(0)
	if feat.RedirectNeigh && opts.Mode == Native && opts.UnderlayIfindex > 0 && os.Getenv(RedirectNeighEnv) != "0" {
		neigh = 1
	}
	svcNet, svcMask := prefixNBO(opts.ServiceCIDR)
	ringSize := spec.Maps["cnilab_events"].MaxEntries
	if opts.eventsSize != 0 {
		ringSize = opts.eventsSize
		spec.Maps["cnilab_events"].MaxEntries = ringSize
	}
	for _, v := range []struct {
		spec *ebpf.VariableSpec
		val  uint32
	}{
		{vars.CfgRoutingMode, uint32(opts.Mode)},
		{vars.CfgVxlanIfindex, uint32(opts.VXLANIfindex)},
		{vars.CfgVni, opts.VNI},
		{vars.CfgRedirectPeer, peer},
		{vars.CfgRedirectNeigh, neigh},
		{vars.CfgUnderlayIfindex, uint32(max(opts.UnderlayIfindex, 0))},
		{vars.CfgServiceNet, svcNet},
		{vars.CfgServiceMask, svcMask},
		{vars.CfgEvents, boolU32(!opts.NoEvents)},
		{vars.CfgEventsWakeup, ringSize / eventsWakeupDivisor},
	} {
		if err := v.spec.Set(v.val); err != nil {
			return nil, fmt.Errorf("load datapath: set %s: %w", v.spec.Name, err)
		}
	}

	d := &Datapath{opts: opts, features: feat, attach: attach, linkDir: filepath.Join(opts.PinPath, linksDir)}
	d.boot = time.Now().Add(-monotonic()).Round(0)
	err = spec.LoadAndAssign(&d.objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: opts.PinPath}})
	if errors.Is(err, ebpf.ErrMapIncompatible) {
		return nil, fmt.Errorf("load datapath: pinned maps under %s do not match this version (Unpin them): %w", opts.PinPath, err)
	}
	if err != nil {
		return nil, fmt.Errorf("load datapath: %w", err)
	}
	if err := os.MkdirAll(d.linkDir, 0o700); err != nil {
		d.objs.Close()
		return nil, fmt.Errorf("load datapath: %w", err)
	}
	return d, nil
}

// prefixNBO is p's network and mask as the programs compare them: in
// network byte order, read as a host-order (little-endian) uint32 the way
// the verifier sees the constant. The zero Prefix gives 0, 0 (none).
func prefixNBO(p netip.Prefix) (network, mask uint32) {
	if !p.IsValid() {
		return 0, 0
	}
	p = p.Masked()
	a := p.Addr().As4()
	m := net.CIDRMask(p.Bits(), 32)
	return binary.NativeEndian.Uint32(a[:]), binary.NativeEndian.Uint32(m)
}

func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func chooseAttach(mode AttachMode, f Features) (AttachMode, error) {
	if env := os.Getenv(AttachEnv); env != "" {
		mode = AttachMode(env)
	}
	switch mode {
	case "":
		if f.TCX {
			return AttachTCX, nil
		}
		return AttachTC, nil
	case AttachTCX:
		if !f.TCX {
			return "", fmt.Errorf("attach mode tcx: %w", ErrNotSupported)
		}
		return AttachTCX, nil
	case AttachTC:
		return AttachTC, nil
	}
	return "", fmt.Errorf("unknown attach mode %q (want tc or tcx)", mode)
}

// AttachMode is the attach mode in use.
func (d *Datapath) AttachMode() AttachMode { return d.attach }

// Features are the kernel features found by the probe.
func (d *Datapath) Features() Features { return d.features }

// Close releases the process's file descriptors. Pinned maps, links and tc
// filters stay, and with them the forwarding.
//
// Close waits for the endpoint, policy and attach writes in progress: one
// cut in half would leave one map ahead of the other (an endpoint deleted
// and its veth-owner entry kept). Those writes return ErrClosed afterwards.
func (d *Datapath) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.epMu.Lock()
	defer d.epMu.Unlock()
	d.polMu.Lock()
	defer d.polMu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.objs.Close()
}

// Unpin removes what Load and the TCX attachments pinned under pinPath:
// the cnilab maps and the links, which detaches the TCX programs. tc filters
// go with their devices or with DetachEndpoint. A bpffs Load mounted stays.
func Unpin(pinPath string) error {
	entries, err := os.ReadDir(pinPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unpin: %w", err)
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(pinPath, e.Name())
		switch {
		case e.Name() == linksDir:
			errs = append(errs, unpinLinks(p))
		case strings.HasPrefix(e.Name(), "cnilab_"):
			if err := os.Remove(p); err != nil {
				errs = append(errs, fmt.Errorf("unpin: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

func unpinLinks(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("unpin links: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if l, err := link.LoadPinnedLink(p, nil); err == nil {
			_ = l.Detach() // also when another process still holds the link
			l.Close()
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("unpin links: %w", err)
	}
	return nil
}
