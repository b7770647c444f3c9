package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/cnilab/cnilab/datapath/api"
	"github.com/cnilab/cnilab/datapath/ipam"
)

// undoStack runs cleanups in reverse order when an ADD fails part way.
type undoStack []func()

func (u *undoStack) push(f func()) { *u = append(*u, f) }

func (u undoStack) run() {
	for i := len(u) - 1; i >= 0; i-- {
		u[i]()
	}
}

// cmdAdd wires a pod interface; on any failure it leaves nothing behind.
func cmdAdd(args *skel.CmdArgs) (err error) {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if err := validateArgs(args, true); err != nil {
		return err
	}
	pa, err := parseCNIArgs(args.Args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*agentTimeout)
	defer cancel()
	client := api.NewClient(conf.AgentSocket)
	node, err := agentNode(ctx, client, conf.AgentSocket)
	if err != nil {
		return err
	}
	w, err := wiringFor(conf, node, args)
	if err != nil {
		return err
	}
	podNS, podNL, err := openNetns(args.Netns)
	if err != nil {
		return err
	}
	defer podNS.Close()
	defer podNL.Close()
	nodeNL, err := nodeHandle()
	if err != nil {
		return err
	}
	defer nodeNL.Close()

	var undo undoStack
	defer func() {
		if err != nil {
			undo.run()
		}
	}()

	alloc, err := ipam.New(conf.IPAMDataDir, node.PodCIDR, node.Gateway)
	if err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("agent's PodCIDR %q / gateway %q: %v", node.PodCIDR, node.Gateway, err), "")
	}
	undo.push(func() { warnErr(alloc.Release(args.ContainerID, args.IfName)) })
	if w.ip, err = alloc.Allocate(args.ContainerID, args.IfName); err != nil {
		if errors.Is(err, ipam.ErrExhausted) {
			return types.NewError(ErrNoFreeAddress, err.Error(), "")
		}
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}

	undo.push(func() { _, e := deleteHostVeth(nodeNL, w.hostName, []netip.Addr{w.ip}); warn(e) })
	if err := enableIPv4Forwarding(); err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	links, err := w.setup(nodeNL, podNS, podNL)
	if err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("wire pod interface %s: %v", args.IfName, err), "")
	}

	ep := api.Endpoint{
		ContainerID: args.ContainerID, IfName: args.IfName, Netns: args.Netns,
		PodNamespace: pa.Namespace, PodName: pa.Name, PodUID: pa.UID,
		IP: w.ip.String(), PodMAC: links.pod.Attrs().HardwareAddr.String(),
		HostIfName: w.hostName, HostIfIndex: links.host.Attrs().Index, HostMAC: links.host.Attrs().HardwareAddr.String(),
	}
	undo.push(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), agentTimeout)
		defer dcancel()
		warn(client.DeleteEndpoint(dctx, args.ContainerID))
	})
	if err := client.PutEndpoint(ctx, ep); err != nil {
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("register endpoint with the cnilab agent at %s", conf.AgentSocket), err.Error())
	}
	return types.PrintResult(w.result(links, args.Netns, conf.DNS), conf.CNIVersion)
}

// wiringFor derives what to lay down from the config, the agent and the env.
func wiringFor(conf *NetConf, node api.NodeInfo, args *skel.CmdArgs) (*wiring, error) {
	w := &wiring{containerID: args.ContainerID, ifName: args.IfName,
		hostName: HostVethName(args.ContainerID, args.IfName), mtu: conf.MTU}
	if w.mtu == 0 {
		w.mtu = node.MTU
	}
	bad := func(format string, a ...any) error {
		return types.NewError(types.ErrInternal, "cnilab agent: "+fmt.Sprintf(format, a...), "")
	}
	var err error
	if w.gateway, err = netip.ParseAddr(node.Gateway); err != nil || !w.gateway.Is4() {
		return nil, bad("invalid gateway %q", node.Gateway)
	}
	if node.GatewayMAC != "" {
		if w.gatewayMAC, err = net.ParseMAC(node.GatewayMAC); err != nil {
			return nil, bad("invalid gatewayMAC %q: %v", node.GatewayMAC, err)
		}
	}
	if w.mtu < 0 || (w.mtu != 0 && w.mtu < 68) {
		return nil, bad("invalid MTU %d", w.mtu)
	}
	return w, nil
}

// result is the CNI result: the host veth, the pod interface, one /32.
func (w *wiring) result(l *wired, sandbox string, dns types.DNS) *current.Result {
	gw := net.IP(w.gateway.AsSlice())
	return &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: l.host.Attrs().Name, Mac: l.host.Attrs().HardwareAddr.String(), Mtu: l.host.Attrs().MTU},
			{Name: l.pod.Attrs().Name, Mac: l.pod.Attrs().HardwareAddr.String(), Mtu: l.pod.Attrs().MTU, Sandbox: sandbox},
		},
		IPs:    []*current.IPConfig{{Interface: current.Int(1), Address: *host32(w.ip), Gateway: gw}},
		Routes: []*types.Route{{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: gw}},
		DNS:    dns,
	}
}

// warn reports a best-effort cleanup failure on stderr (stdout is the result).
func warn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "cnilab-cni: warning:", err)
	}
}

func warnErr[T any](_ T, err error) { warn(err) }
