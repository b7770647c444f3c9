// Command cnilab-agent is cnilab's per-node agent: it loads the eBPF
// datapath, keeps it in step with the cluster and serves the node-local API
// the CNI plugin uses.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/cnilab/cnilab/datapath/agent"
)

var version = "dev"

func main() {
	var cfg agent.Config
	var showVersion bool
	fs := flag.NewFlagSet("cnilab-agent", flag.ContinueOnError)
	fs.StringVar(&cfg.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's Kubernetes name")
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig (empty: in-cluster)")
	fs.StringVar(&cfg.RoutingMode, "routing-mode", agent.RoutingNative, "native or vxlan")
	fs.StringVar(&cfg.UnderlayDevice, "underlay-device", "eth0", "the node's device toward other nodes")
	fs.StringVar(&cfg.StateDir, "state-dir", "/var/lib/cnilab", "agent state")
	fs.StringVar(&cfg.BPFFSDir, "bpffs", "/sys/fs/bpf/cnilab", "bpffs directory for pinned maps and links")
	fs.StringVar(&cfg.Socket, "socket", "/run/cnilab/agent.sock", "unix socket of the node-local API")
	fs.StringVar(&cfg.CNIConfDir, "cni-conf-dir", "/etc/cni/net.d", "where to write the CNI configuration once ready")
	fs.StringVar(&cfg.IPAMDataDir, "ipam-data-dir", "/var/lib/cnilab/ipam", "the CNI plugin's IPAM state directory")
	fs.StringVar(&cfg.MetricsAddress, "metrics-address", "127.0.0.1:9962", "TCP address for /metrics (empty: only on the socket)")
	fs.BoolVar(&showVersion, "version", false, "print the version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if showVersion {
		fmt.Println("cnilab-agent", version)
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	a, err := agent.New(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cnilab-agent: "+err.Error())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx, agent.LoadDatapath); err != nil {
		fmt.Fprintln(os.Stderr, "cnilab-agent: "+err.Error())
		os.Exit(1)
	}
}
