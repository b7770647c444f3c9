// Package cni is cnilab's CNI plugin (spec 1.1): ADD wires a pod into the node
// with a veth pair, a /32 address from the node's PodCIDR, a static gateway
// neighbour and /32 routes, and registers the endpoint with the node's cnilab
// agent; DEL, CHECK, STATUS and GC undo, verify and reconcile it.
//
// The plugin runs in the node's network namespace. It fails closed: without a
// reachable, ready agent no pod gets a network.
package cni

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cnilab/cnilab/datapath/api"
)

// ErrNoFreeAddress is the plugin-specific error code (spec: 100+) for an
// exhausted PodCIDR.
const ErrNoFreeAddress uint = 100

// agentTimeout bounds each conversation with the agent.
const agentTimeout = 30 * time.Second

// SupportedVersions are the CNI spec versions the plugin speaks.
var SupportedVersions = version.PluginSupports("0.4.0", "1.0.0", "1.1.0")

// Main runs the plugin; build is the program version shown by `cnilab-cni`
// without CNI_COMMAND.
func Main(build string) {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, Status: cmdStatus, GC: cmdGC},
		SupportedVersions, "cnilab-cni "+build+": the cnilab CNI plugin")
}

// agentNode asks the agent for the node's facts; any failure, or an agent that
// is not ready, is code 11 so the runtime retries.
func agentNode(ctx context.Context, c *api.Client, socket string) (api.NodeInfo, error) {
	n, err := c.Node(ctx)
	if errors.Is(err, api.ErrAgentUnreachable) {
		msg := fmt.Sprintf("%s at %s", api.ErrAgentUnreachable, socket)
		return n, types.NewError(types.ErrTryAgainLater, msg, strings.TrimPrefix(err.Error(), msg+": "))
	}
	if err != nil {
		return n, types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("cnilab agent at %s did not give the node's facts", socket), err.Error())
	}
	if !n.Ready {
		return n, types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("cnilab agent at %s is not ready", socket), "node "+n.NodeName)
	}
	if n.PodCIDR == "" {
		return n, types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("cnilab agent at %s reports no PodCIDR for node %s yet", socket, n.NodeName), "")
	}
	return n, nil
}

// cmdStatus reports whether an ADD could succeed now.
func cmdStatus(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	defer cancel()
	if _, err := agentNode(ctx, api.NewClient(conf.AgentSocket), conf.AgentSocket); err != nil {
		var e *types.Error
		errors.As(err, &e)
		return types.NewError(types.ErrPluginNotAvailable, "plugin not available: "+e.Msg, e.Details)
	}
	return nil
}

// openNetns opens the pod's namespace; a missing one is "container unknown".
func openNetns(path string) (netns.NsHandle, *netlink.Handle, error) {
	ns, err := netns.GetFromPath(path)
	if errors.Is(err, os.ErrNotExist) {
		return ns, nil, types.NewError(types.ErrUnknownContainer, fmt.Sprintf("network namespace %s does not exist", path), "")
	}
	if err != nil {
		return ns, nil, types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_NETNS %s: open: %v", path, err), "")
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(ns), &st); err != nil || st.Type != unix.NSFS_MAGIC {
		ns.Close()
		return ns, nil, types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_NETNS %s is not a network namespace", path), "")
	}
	self, err := netns.Get()
	if err == nil {
		defer self.Close()
		if self.Equal(ns) {
			ns.Close()
			return ns, nil, types.NewError(types.ErrInvalidEnvironmentVariables,
				fmt.Sprintf("CNI_NETNS %s is the plugin's own (the node's) network namespace", path), "")
		}
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return ns, nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("netlink in %s: %v", path, err), "")
	}
	return ns, h, nil
}

// nodeHandle is a netlink handle on the plugin's (the node's) namespace.
func nodeHandle() (*netlink.Handle, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, "netlink in the node namespace: "+err.Error(), "")
	}
	return h, nil
}
