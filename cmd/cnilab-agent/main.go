// Command cnilab-agent is cnilab's per-node agent: it loads the eBPF
// datapath, keeps it in step with the cluster and serves the node-local API
// the CNI plugin uses.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/cnilab/cnilab/datapath/agent"
)

var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is the agent's main: it returns the exit status, 2 for a bad command
// line or configuration (no usable Kubernetes client among them), 1 when the
// agent stops on an error.
func run(args []string, stdout, stderr io.Writer) int {
	var cfg agent.Config
	var showVersion bool
	var serviceCIDR string
	fs := flag.NewFlagSet("cnilab-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's Kubernetes name")
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig (empty: the in-cluster configuration of the pod's ServiceAccount)")
	fs.StringVar(&cfg.RoutingMode, "routing-mode", agent.RoutingNative, "native or vxlan")
	fs.StringVar(&cfg.UnderlayDevice, "underlay-device", "eth0", "the node's device toward other nodes")
	fs.StringVar(&cfg.StateDir, "state-dir", "/var/lib/cnilab", "agent state")
	fs.StringVar(&cfg.BPFFSDir, "bpffs", "/sys/fs/bpf/cnilab", "bpffs directory for pinned maps and links")
	fs.StringVar(&cfg.Socket, "socket", "/run/cnilab/agent.sock", "unix socket of the node-local API")
	fs.StringVar(&cfg.CNIConfDir, "cni-conf-dir", "/etc/cni/net.d", "where to write the CNI configuration once ready")
	fs.StringVar(&cfg.IPAMDataDir, "ipam-data-dir", "/var/lib/cnilab/ipam", "the CNI plugin's IPAM state directory")
	fs.StringVar(&cfg.MetricsAddress, "metrics-address", "127.0.0.1:9962", "TCP address for /metrics and /healthz (empty: only on the socket)")
	fs.StringVar(&serviceCIDR, "service-cidr", "10.96.0.0/12", "the cluster's Service network (kube-apiserver --service-cluster-ip-range): pods' packets to it go to the node's stack (kube-proxy), policy applies after translation; empty: none")
	fs.BoolVar(&showVersion, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if showVersion {
		fmt.Fprintln(stdout, "cnilab-agent", version)
		return 0
	}
	if serviceCIDR != "" {
		p, err := netip.ParsePrefix(serviceCIDR)
		if err != nil {
			fmt.Fprintf(stderr, "cnilab-agent: --service-cidr %q: want an IPv4 network such as 10.96.0.0/12\n", serviceCIDR)
			return 2
		}
		cfg.ServiceCIDR = p.Masked()
	}
	cfg.Version = version
	log := slog.New(slog.NewTextHandler(stderr, nil))
	a, err := agent.New(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "cnilab-agent: "+err.Error())
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx, agent.LoadDatapath); err != nil {
		fmt.Fprintln(stderr, "cnilab-agent: "+err.Error())
		return 1
	}
	return 0
}
