package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// remoteNode is another node as the datapath sees it.
type remoteNode struct {
	Name    string       `json:"name"`
	PodCIDR netip.Prefix `json:"podCIDR"`
	IP      netip.Addr   `json:"ip"`
}

// remoteFromNode reads a Node's spec.podCIDR and InternalIP; ok is false
// while either is missing or the node is this one.
func remoteFromNode(n *corev1.Node, self string) (remoteNode, bool) {
	if n.Name == self || n.Spec.PodCIDR == "" {
		return remoteNode{}, false
	}
	p, err := netip.ParsePrefix(n.Spec.PodCIDR)
	if err != nil || !p.Addr().Is4() {
		return remoteNode{}, false
	}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			return remoteNode{Name: n.Name, PodCIDR: p.Masked(), IP: ip}, true
		}
	}
	return remoteNode{}, false
}

func (a *Agent) watchNodes(ctx context.Context, synced chan<- struct{}) {
	factory := informers.NewSharedInformerFactory(a.client, 0)
	inf := factory.Core().V1().Nodes().Informer()
	upsert := func(obj any) {
		n, ok := obj.(*corev1.Node)
		if !ok {
			return
		}
		if r, ok := remoteFromNode(n, a.cfg.NodeName); ok {
			if err := a.upsertRemote(r); err != nil {
				a.log.Warn("route to node", "node", n.Name, "err", err)
			}
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    upsert,
		UpdateFunc: func(_, obj any) { upsert(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				a.deleteRemote(n.Name)
			}
		},
	})
	factory.Start(ctx.Done())
	if cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		close(synced)
	}
	<-ctx.Done()
	// Its handlers write routes and the remote map: wait for them.
	factory.Shutdown()
}

// upsertRemote routes a remote node's PodCIDR: natively via its underlay IP,
// or into the overlay device with the node IP in the datapath's remote map.
func (a *Agent) upsertRemote(r remoteNode) error {
	a.mu.Lock()
	old, had := a.remotes[r.Name]
	a.remotes[r.Name] = r
	dp := a.dp
	a.mu.Unlock()
	if had && old.PodCIDR != r.PodCIDR {
		a.removeRoute(old)
	}
	if err := dp.UpsertRemote(r.PodCIDR, r.IP); err != nil {
		return err
	}
	route := a.routeFor(r)
	if err := netlink.RouteReplace(route); err != nil {
		return fmt.Errorf("route %s: %w", route, err)
	}
	return nil
}

func (a *Agent) deleteRemote(name string) {
	a.mu.Lock()
	r, ok := a.remotes[name]
	delete(a.remotes, name)
	a.mu.Unlock()
	if ok {
		a.removeRoute(r)
	}
}

func (a *Agent) removeRoute(r remoteNode) {
	_ = netlink.RouteDel(a.routeFor(r))
	_ = a.dp.DeleteRemote(r.PodCIDR)
}

func (a *Agent) routeFor(r remoteNode) *netlink.Route {
	dst := &net.IPNet{IP: r.PodCIDR.Addr().AsSlice(), Mask: net.CIDRMask(r.PodCIDR.Bits(), 32)}
	if a.overlay != 0 {
		return &netlink.Route{Dst: dst, LinkIndex: a.overlay, Scope: netlink.SCOPE_LINK, MTU: a.mtu, Src: a.gateway.AsSlice()}
	}
	return &netlink.Route{Dst: dst, Gw: r.IP.AsSlice(), LinkIndex: a.underlay}
}
