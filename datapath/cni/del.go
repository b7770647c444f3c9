package cni

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"

	"github.com/cnilab/cnilab/datapath/api"
	"github.com/cnilab/cnilab/datapath/ipam"
)

// cmdDel removes an attachment, best effort and idempotently: what is already
// gone is not an error, and an unreachable agent does not stop the local
// cleanup (the agent drops endpoints whose host veth no longer exists when it
// reconciles).
func cmdDel(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if err := validateArgs(args, false); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	defer cancel()
	var agentErr error
	if err := api.NewClient(conf.AgentSocket).DeleteEndpoint(ctx, args.ContainerID); errors.Is(err, api.ErrAgentUnreachable) {
		warn(fmt.Errorf("DEL %s/%s: %w; cleaning up local state anyway", args.ContainerID, args.IfName, err))
	} else if err != nil {
		agentErr = err
	}
	if err := releaseAttachment(conf, ipam.Attachment{ContainerID: args.ContainerID, IfName: args.IfName}); err != nil {
		return err
	}
	if agentErr != nil {
		// Local state is gone; a retried DEL only retries the agent.
		return types.NewError(types.ErrTryAgainLater, "deregister endpoint from the cnilab agent", agentErr.Error())
	}
	return nil
}

// releaseAttachment deletes the host veth and its route, then frees the address.
func releaseAttachment(conf *NetConf, a ipam.Attachment) error {
	nodeNL, err := nodeHandle()
	if err != nil {
		return err
	}
	defer nodeNL.Close()
	var ips []netip.Addr
	if ranges, err := ipam.Ranges(conf.IPAMDataDir); err == nil {
		for _, r := range ranges {
			if ip, ok, _ := r.Lookup(a.ContainerID, a.IfName); ok {
				ips = append(ips, ip)
			}
		}
	}
	if _, err := deleteHostVeth(nodeNL, HostVethName(a.ContainerID, a.IfName), ips); err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	if _, err := ipam.ReleaseEverywhere(conf.IPAMDataDir, a.ContainerID, a.IfName); err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("release address of %s/%s: %v", a.ContainerID, a.IfName, err), "")
	}
	return nil
}

// cmdGC frees every attachment not in cni.dev/valid-attachments: addresses
// held in the IPAM store, host veths cnilab made (found by their alias), and
// their agent endpoints when the agent answers.
func cmdGC(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	valid := map[ipam.Attachment]bool{}
	for _, v := range conf.ValidAttachments {
		valid[ipam.Attachment{ContainerID: v.ContainerID, IfName: v.IfName}] = true
	}
	stale := map[ipam.Attachment]bool{}
	allocs, err := ipam.ListEverywhere(conf.IPAMDataDir)
	if err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	for _, al := range allocs {
		if !valid[al.Owner] && al.Owner.ContainerID != "" {
			stale[al.Owner] = true
		}
	}
	nodeNL, err := nodeHandle()
	if err != nil {
		return err
	}
	links, err := linkList(nodeNL)
	nodeNL.Close()
	if err != nil {
		return types.NewError(types.ErrIOFailure, "list node links: "+err.Error(), "")
	}
	for _, l := range links {
		if _, isVeth := l.(*netlink.Veth); !isVeth {
			continue
		}
		id, ifname, ok := parseAlias(l.Attrs().Alias)
		a := ipam.Attachment{ContainerID: id, IfName: ifname}
		if ok && !valid[a] && l.Attrs().Name == HostVethName(id, ifname) {
			stale[a] = true
		}
	}
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	defer cancel()
	client := api.NewClient(conf.AgentSocket)
	validIDs := map[string]bool{}
	for a := range valid {
		validIDs[a.ContainerID] = true
	}
	agentDown := false
	for a := range stale {
		// Endpoints are keyed by container ID alone: keep a container's
		// endpoint while any of its attachments is still valid.
		if !agentDown && !validIDs[a.ContainerID] {
			if err := client.DeleteEndpoint(ctx, a.ContainerID); errors.Is(err, api.ErrAgentUnreachable) {
				agentDown = true
				warn(fmt.Errorf("GC: %w; cleaning up local state anyway", err))
			} else if err != nil {
				warn(fmt.Errorf("GC %s/%s: %w", a.ContainerID, a.IfName, err))
			}
		}
		errs = append(errs, releaseAttachment(conf, a))
	}
	// Torn allocation files (no owner) are freed too.
	if _, err := ipam.ReleaseAllExceptEverywhere(conf.IPAMDataDir, valid); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return types.NewError(types.ErrIOFailure, "garbage collection", err.Error())
	}
	return nil
}
