package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/cnilab/cnilab/datapath/flows"

	"github.com/cnilab/cnilab/datapath/loader"
)

// LoadDatapath loads the eBPF datapath of datapath/loader for cfg; overlay is
// the VXLAN device's ifindex (0 in native mode).
func LoadDatapath(cfg Config, overlay int) (Datapath, error) {
	opts := loader.Options{PinPath: cfg.BPFFSDir, Mode: loader.Native, ServiceCIDR: cfg.ServiceCIDR}
	under, err := net.InterfaceByName(cfg.UnderlayDevice)
	if err != nil {
		return nil, fmt.Errorf("underlay device %s: %w", cfg.UnderlayDevice, err)
	}
	opts.UnderlayIfindex = under.Index
	if cfg.RoutingMode == RoutingVXLAN {
		opts.Mode, opts.VXLANIfindex = loader.VXLAN, overlay
	}
	d, err := loader.Load(opts)
	if err != nil {
		return nil, err
	}
	return loaderDatapath{d}, nil
}

// loaderDatapath adapts *loader.Datapath to Datapath.
type loaderDatapath struct{ *loader.Datapath }

func (l loaderDatapath) AttachMode() string { return string(l.Datapath.AttachMode()) }

func (l loaderDatapath) Features() map[string]any {
	f := l.Datapath.Features()
	return map[string]any{"tcx": f.TCX, "redirectPeer": f.RedirectPeer, "redirectNeigh": f.RedirectNeigh, "ringBuf": f.RingBuf, "kernel": f.Kernel}
}

func (l loaderDatapath) EndpointEntries() (map[netip.Addr]EndpointEntry, error) {
	eps, err := l.Datapath.Endpoints()
	if err != nil {
		return nil, err
	}
	out := make(map[netip.Addr]EndpointEntry, len(eps))
	for ip, e := range eps {
		out[ip] = EndpointEntry{Ifindex: e.Ifindex, PodMAC: e.PodMAC, HostMAC: e.HostMAC, PolicyIngress: e.PolicyIngress, PolicyEgress: e.PolicyEgress}
	}
	return out, nil
}

func (l loaderDatapath) PruneVethOwners() ([]string, error) {
	pruned, err := l.Datapath.PruneVethOwners()
	out := make([]string, 0, len(pruned))
	for _, o := range pruned {
		out = append(out, fmt.Sprintf("ifindex %d → %v", o.Ifindex, o.IP))
	}
	return out, err
}

func (l loaderDatapath) UpsertEndpoint(ip netip.Addr, e EndpointEntry) error {
	return l.Datapath.UpsertEndpoint(ip, loader.EndpointInfo{Ifindex: e.Ifindex, PodMAC: e.PodMAC, HostMAC: e.HostMAC,
		PolicyIngress: e.PolicyIngress, PolicyEgress: e.PolicyEgress})
}

func (l loaderDatapath) AddPolicyKey(ep netip.Addr, id uint32, port uint16, proto uint8, egress bool) error {
	return l.Datapath.AddPolicyKey(loader.PolicyKey{Endpoint: ep, Identity: id, Port: port, Proto: proto, Egress: egress})
}

func (l loaderDatapath) RemovePolicyKey(ep netip.Addr, id uint32, port uint16, proto uint8, egress bool) error {
	return l.Datapath.RemovePolicyKey(loader.PolicyKey{Endpoint: ep, Identity: id, Port: port, Proto: proto, Egress: egress})
}

func (l loaderDatapath) GCConntrack(now time.Time) (int, error) { return l.Datapath.GCConntrack(now) }

func (l loaderDatapath) ReadEvents(ctx context.Context, fn func(flows.Event)) error {
	return l.Datapath.ReadEvents(ctx, func(e loader.FlowEvent) {
		fn(flows.Event{
			Time: e.Time, Src: e.Src, Dst: e.Dst, SrcPort: e.SrcPort, DstPort: e.DstPort, Proto: e.Proto,
			ICMPType: e.ICMPType, ICMPCode: e.ICMPCode, Verdict: uint8(e.Verdict),
			DropReason: uint8(e.DropReason), DropReasonText: dropText(e.DropReason), Direction: uint8(e.Direction),
			IsReply: e.IsReply, NewConn: e.New, Closing: e.Closing, ToStack: e.ToStack, TCPFlags: e.TCPFlags,
			SrcIdentity: e.SrcIdentity, DstIdentity: e.DstIdentity, Ifindex: e.Ifindex, Len: e.Len,
		})
	})
}

func (l loaderDatapath) Counters() ([]flows.Counter, error) {
	cs, err := l.Datapath.Counters()
	if err != nil {
		return nil, err
	}
	out := make([]flows.Counter, 0, len(cs))
	for _, c := range cs {
		out = append(out, flows.Counter{Verdict: uint8(c.Verdict), DropReason: uint8(c.DropReason),
			DropReasonText: dropText(c.DropReason), Direction: uint8(c.Direction), Packets: c.Packets, Bytes: c.Bytes})
	}
	return out, nil
}

func dropText(r loader.DropReason) string {
	if r == 0 {
		return ""
	}
	return r.String()
}
