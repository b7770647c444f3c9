package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/cnilab/cnilab/lab/config"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
	"github.com/cnilab/cnilab/lab/internal/proc"
)

// Bare is the network with no CNI at all, what a pod network is measured
// against: for same-node traffic two namespaces joined by one veth pair; for
// cross-node traffic two node namespaces on a bridge in an underlay
// namespace, wired as a lab's nodes are. Each side has a cnilab-probe server
// on TCP and UDP port BarePort. Its namespaces and processes carry the name
// like a lab's, so `cnilab lab down NAME` (or --all) removes what a killed
// run left.
type Bare struct {
	cfg config.Config
	// SameServer and CrossServer are the servers' addresses.
	SameServer, CrossServer string
}

// BarePort is the port the bare network's servers answer on.
const BarePort = 80

// Addresses of the bare network: a /30 for the veth pair, a /24 for the
// underlay. Nothing else is in these namespaces, so nothing routes anywhere.
var (
	bareNet         = "10.99.0.0/16"
	bareSameClient  = net.IPv4(10, 99, 0, 1)
	bareSameServer  = net.IPv4(10, 99, 0, 2)
	bareCrossClient = net.IPv4(10, 99, 1, 12)
	bareCrossServer = net.IPv4(10, 99, 1, 11)
)

// Namespaces of the bare network, after the lab prefix.
const (
	bareSameA    = "same-a"
	bareSameB    = "same-b"
	bareUnderlay = "underlay"
	bareNode1    = "node-1"
	bareNode2    = "node-2"
)

// CreateBare makes the bare network name and starts its servers. On failure
// it removes whatever it made.
func (p Provider) CreateBare(ctx context.Context, name string) (b *Bare, err error) {
	cfg := config.Default()
	cfg.Name, cfg.StateDir, cfg.Underlay = name, p.StateDir, bareNet
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bare network: %w", err)
	}
	if names, _ := labns.List(cfg.NetnsPrefix()); len(names) > 0 {
		return nil, fmt.Errorf("bare network %s: namespaces %v exist already: remove them with 'cnilab lab down %s'", name, names, name)
	}
	defer func() {
		if err != nil {
			_ = p.Delete(name)
		}
	}()
	ns := func(s string) string { return cfg.NetnsPrefix() + s }
	for _, s := range []string{bareSameA, bareSameB, bareUnderlay, bareNode1, bareNode2} {
		if err := labns.Create(ns(s)); err != nil {
			return nil, err
		}
	}
	if err := bareVeth(ns(bareSameA), "eth0", bareSameClient, ns(bareSameB), "eth0", bareSameServer, 30); err != nil {
		return nil, fmt.Errorf("bare network %s: same-node pair: %w", name, err)
	}
	if err := bareUnderlayNet(cfg, ns); err != nil {
		return nil, fmt.Errorf("bare network %s: underlay: %w", name, err)
	}
	if err := CheckIsolation(cfg); err != nil {
		return nil, fmt.Errorf("bare network %s is not isolated: %w", name, err)
	}
	b = &Bare{cfg: cfg, SameServer: bareSameServer.String(), CrossServer: bareCrossServer.String()}
	for server, at := range map[string]string{"server-same": ns(bareSameB), "server-cross": ns(bareNode1)} {
		if err := b.startServer(ctx, server, at); err != nil {
			return nil, fmt.Errorf("bare network %s: %w", name, err)
		}
	}
	return b, nil
}

// bareVeth joins namespace a and b with a veth pair and addresses both ends.
func bareVeth(a, aName string, aIP net.IP, b, bName string, bIP net.IP, prefix int) error {
	ah, err := handleIn(a)
	if err != nil {
		return err
	}
	defer ah.Close()
	bh, err := handleIn(b)
	if err != nil {
		return err
	}
	defer bh.Close()
	bns, err := labns.Handle(b)
	if err != nil {
		return err
	}
	defer bns.Close()
	for _, h := range []*netlink.Handle{ah, bh} {
		if err := loUp(h); err != nil {
			return err
		}
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aName}, PeerName: bName, PeerNamespace: netlink.NsFd(bns)}
	if err := ah.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s/%s: %w", aName, bName, err)
	}
	for _, end := range []struct {
		h    *netlink.Handle
		name string
		ip   net.IP
	}{{ah, aName, aIP}, {bh, bName, bIP}} {
		l, err := end.h.LinkByName(end.name)
		if err != nil {
			return fmt.Errorf("find %s: %w", end.name, err)
		}
		if end.ip != nil {
			if err := end.h.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: end.ip, Mask: net.CIDRMask(prefix, 32)}}); err != nil {
				return fmt.Errorf("address %s on %s: %w", end.ip, end.name, err)
			}
		}
		if err := end.h.LinkSetUp(l); err != nil {
			return fmt.Errorf("set %s up: %w", end.name, err)
		}
	}
	return nil
}

// bareUnderlayNet is a bridge in the underlay namespace with both nodes'
// eth0 on it, as createUnderlay and createNode wire a lab.
func bareUnderlayNet(cfg config.Config, ns func(string) string) error {
	uh, err := handleIn(ns(bareUnderlay))
	if err != nil {
		return err
	}
	defer uh.Close()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: underlayBridge}}
	if err := uh.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge: %w", err)
	}
	if err := uh.LinkSetUp(br); err != nil {
		return fmt.Errorf("set bridge up: %w", err)
	}
	for _, n := range []struct {
		ns string
		ip net.IP
	}{{bareNode1, bareCrossServer}, {bareNode2, bareCrossClient}} {
		if err := bareVeth(ns(n.ns), "eth0", n.ip, ns(bareUnderlay), n.ns, nil, 24); err != nil {
			return fmt.Errorf("%s: %w", n.ns, err)
		}
		port, err := uh.LinkByName(n.ns)
		if err != nil {
			return fmt.Errorf("find %s: %w", n.ns, err)
		}
		if err := uh.LinkSetMaster(port, br); err != nil {
			return fmt.Errorf("attach %s to the bridge: %w", n.ns, err)
		}
	}
	return nil
}

// startServer runs cnilab-probe serve in ns and waits until it listens.
func (b *Bare) startServer(ctx context.Context, name, ns string) error {
	run := filepath.Join(b.cfg.Dir(), "run")
	ready := filepath.Join(run, name+".ready")
	port := fmt.Sprint(BarePort)
	cmd, err := labns.Command(ns, filepath.Join(b.cfg.BinDir, "cnilab-probe"), "serve", "--name", name, "--tcp", port, "--udp", port, "--ready-file", ready)
	if err != nil {
		return err
	}
	if _, err := proc.Start(proc.Spec{Lab: b.cfg.Name, Name: name, Cmd: cmd, LogDir: filepath.Join(b.cfg.Dir(), "logs"), PidDir: run}); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			return nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", name, err)
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(b.cfg.Dir(), "logs", name+".log"))
			return fmt.Errorf("%s did not listen within 10s: %s", name, log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Name is the bare network's name.
func (b *Bare) Name() string { return b.cfg.Name }

// ExecSame runs argv in the same-node client's namespace; ExecCross in the
// cross-node client's (node-2). A non-zero exit is in the result.
func (b *Bare) ExecSame(ctx context.Context, argv []string) (ExecResult, error) {
	return execLocal(ctx, b.cfg, b.cfg.NetnsPrefix()+bareSameA, argv)
}

// ExecCross runs argv on the cross-node client (node-2).
func (b *Bare) ExecCross(ctx context.Context, argv []string) (ExecResult, error) {
	return execLocal(ctx, b.cfg, b.cfg.NetnsPrefix()+bareNode2, argv)
}
