package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/lab/guest"
	"github.com/cnilab/cnilab/lab/noderole"
	"github.com/cnilab/cnilab/lab/portforward"
)

func labCommand() *cobra.Command {
	c := &cobra.Command{Use: "lab", Short: "Bring lab clusters up and down, and run commands in their pods"}
	c.AddCommand(labUp(), labDown(), labList(), labKubeconfig(), labExec(), labNodeRole(), labNodeSandbox(), labNodeInit(), labPortForward(), labGuestRelay(), labCheckIsolation(), labLogs())
	return c
}

func labUp() *cobra.Command {
	var provider, cni, name, kernel, kubeconfig, nodeImage, nodeKind string
	var nodes, apiPort int
	var retain, kubeProxy bool
	c := &cobra.Command{
		Use:   "up",
		Short: "Create a lab cluster; prints the kubeconfig path as its last line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := labProvider(provider, kubeconfig, cmd.ErrOrStderr())
			if err != nil {
				return usageError{err}
			}
			// Defaults that depend on the provider: kind makes one control
			// plane and two workers; an existing cluster keeps its own CNI.
			if provider == "kind" && !cmd.Flags().Changed("nodes") {
				nodes = config.DefaultKindNodes
			}
			if provider == "existing" && !cmd.Flags().Changed("cni") {
				cni = config.ExistingCNI
			}
			cfg := config.Default()
			cfg.Name, cfg.CNI, cfg.Nodes, cfg.APIPort, cfg.Provider = name, cni, nodes, apiPort, provider
			for flag, want := range map[string]string{"kernel": "qemu", "retain": "kind", "kind-image": "kind", "kubeconfig": "existing"} {
				if cmd.Flags().Changed(flag) && provider != want {
					return usageError{fmt.Errorf("--%s is for the %s provider, not %s", flag, want, provider)}
				}
			}
			if kernel != "" {
				cfg.QEMU = &config.QEMU{Kernel: kernel}
			}
			if provider == "kind" {
				cfg.Kind = &config.Kind{Retain: retain, NodeImage: nodeImage}
			}
			cfg.Kubeconfig = kubeconfig
			if cmd.Flags().Changed("kube-proxy") && provider != "netns" && provider != "qemu" {
				return usageError{fmt.Errorf("--kube-proxy is for the netns and qemu providers, not %s", provider)}
			}
			cfg.NoKubeProxy = !kubeProxy
			cfg.NodeKind = nodeKind
			if nodeKind == "" && (provider == "netns" || provider == "qemu") {
				cfg.NodeKind = config.DefaultNodeKind(provider)
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			cl, err := p.Create(cmd.Context(), lab.WithConfig(cfg))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), cl.Kubeconfig())
			return nil
		},
	}
	c.Flags().StringVar(&provider, "provider", config.DefaultProvider, "cluster provider: "+strings.Join(config.Providers, ", "))
	c.Flags().StringVar(&cni, "cni", config.DefaultCNI, "pod network: "+strings.Join(config.CNIs, ", ")+" (existing: the cluster's own, the existing provider's default)")
	c.Flags().StringVar(&name, "name", config.DefaultName, "lab name")
	c.Flags().IntVar(&nodes, "nodes", config.DefaultNodes, fmt.Sprintf("number of nodes (kind: default %d, one control plane and the rest workers; existing: the least number of Ready nodes)", config.DefaultKindNodes))
	c.Flags().StringVar(&kernel, "kernel", "", "qemu provider: catalog kernel the VMs boot (see 'cnilab kernels list')")
	c.Flags().IntVar(&apiPort, "api-port", 0, "loopback port for the API server (0: any free port)")
	c.Flags().BoolVar(&kubeProxy, "kube-proxy", true, "netns and qemu providers: run kube-proxy (iptables mode) on every node, as nearly every cluster does (flannel labs always do)")
	c.Flags().StringVar(&nodeKind, "node-kind", "", "netns provider: real (the default: containerd and the kubelet in each node's own sandbox, kube-proxy, CoreDNS and the CNI as workloads) or light (the lab's own node role, no runtime; faster); qemu: light only so far")
	c.Flags().BoolVar(&retain, "retain", false, "kind provider: keep the cluster when its bring-up fails")
	c.Flags().StringVar(&nodeImage, "kind-image", "", "kind provider: kindest/node image of the nodes (default: the kind release's)")
	c.Flags().StringVar(&kubeconfig, "kubeconfig", "", "existing provider: kubeconfig of the cluster (default: $CNILAB_KUBECONFIG, $KUBECONFIG, ~/.kube/config)")
	return c
}

// labProvider is the named provider; the existing provider's cluster is the
// kubeconfig's.
func labProvider(provider, kubeconfig string, progress io.Writer) (lab.Provider, error) {
	if provider == "existing" {
		return lab.NewExistingProvider(kubeconfig, progress), nil
	}
	return lab.NewProvider(provider, progress)
}

func labDown() *cobra.Command {
	var name, provider, kubeconfig string
	var all bool
	c := &cobra.Command{
		Use:   "down",
		Short: "Remove a lab (or --all) and everything it made, also after a killed run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := labProvider(provider, kubeconfig, cmd.ErrOrStderr())
			if err != nil {
				return usageError{err}
			}
			if all {
				if cmd.Flags().Changed("name") {
					return usageError{fmt.Errorf("--all and --name exclude each other")}
				}
				return p.DeleteAll()
			}
			if err := p.Delete(name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Lab %q removed\n", name)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", config.DefaultName, "lab name")
	c.Flags().BoolVar(&all, "all", false, "remove every lab of the provider (netns and qemu: every lab on this machine)")
	c.Flags().StringVar(&provider, "provider", config.DefaultProvider, "provider of the lab: netns (also removes qemu labs), kind, existing (removes only the namespaces the lab made)")
	c.Flags().StringVar(&kubeconfig, "kubeconfig", "", "existing provider: kubeconfig of the cluster")
	return c
}

func labList() *cobra.Command {
	var provider, kubeconfig string
	c := &cobra.Command{
		Use:   "list",
		Short: "List labs on this machine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := labProvider(provider, kubeconfig, nil)
			if err != nil {
				return usageError{err}
			}
			names, err := p.List()
			if err != nil {
				return err
			}
			for _, n := range names {
				line := n
				if cl, err := p.Get(n); err == nil {
					line = fmt.Sprintf("%s\tprovider=%s cni=%s nodes=%d kubeconfig=%s", n, cl.Provider(), cl.CNI(), len(cl.Nodes()), cl.Kubeconfig())
				} else {
					line += "\t(leftovers without state: remove with 'cnilab lab down --name " + n + "')"
				}
				fmt.Fprintln(cmd.OutOrStdout(), line)
			}
			return nil
		},
	}
	c.Flags().StringVar(&provider, "provider", config.DefaultProvider, "provider of the labs: netns (and qemu), kind, existing")
	c.Flags().StringVar(&kubeconfig, "kubeconfig", "", "existing provider: kubeconfig of the cluster")
	return c
}

func labKubeconfig() *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the path of a lab's admin kubeconfig",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := findLab(name)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), cl.Kubeconfig())
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", config.DefaultName, "lab name")
	return c
}

func labExec() *cobra.Command {
	var name, node string
	c := &cobra.Command{
		Use:   "exec [--name NAME] (NAMESPACE/POD | --node NODE) -- COMMAND [ARG...]",
		Short: "Run a command in a pod's (or node's) network namespace, as kubectl exec would",
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			var target string
			var argv []string
			switch {
			case node != "" && dash == 0:
				argv = args
			case node == "" && dash == 1:
				target, argv = args[0], args[1:]
			default:
				return usageError{fmt.Errorf("usage: cnilab lab exec NAMESPACE/POD -- COMMAND [ARG...]")}
			}
			if len(argv) == 0 {
				return usageError{fmt.Errorf("no command given after --")}
			}
			cl, err := findLab(name)
			if err != nil {
				return err
			}
			var res lab.ExecResult
			if node != "" {
				res, err = cl.ExecNode(cmd.Context(), node, argv)
			} else {
				ns, pod, ok := strings.Cut(target, "/")
				if !ok || ns == "" || pod == "" {
					return usageError{fmt.Errorf("pod %q: want NAMESPACE/POD", target)}
				}
				res, err = cl.ExecPod(cmd.Context(), ns, pod, argv)
			}
			if err != nil {
				return err
			}
			os.Stdout.Write(res.Stdout)
			os.Stderr.Write(res.Stderr)
			if res.ExitCode != 0 {
				os.Exit(res.ExitCode)
			}
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", config.DefaultName, "lab name")
	c.Flags().StringVar(&node, "node", "", "run on this node instead of in a pod")
	return c
}

func labNodeRole() *cobra.Command {
	var path string
	c := &cobra.Command{
		Use:    "node-role --config PATH",
		Short:  "Run a node's kubelet-like role (started by the lab inside the node)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("node role config: %w", err)
			}
			var cfg noderole.Config
			if err := json.Unmarshal(b, &cfg); err != nil {
				return fmt.Errorf("node role config %s: %w", path, err)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("node", cfg.NodeName)
			return noderole.Run(cmd.Context(), cfg, log)
		},
	}
	c.Flags().StringVar(&path, "config", "", "node role configuration (JSON)")
	return c
}

func labNodeSandbox() *cobra.Command {
	var spec string
	c := &cobra.Command{
		Use:    "node-sandbox --spec PATH",
		Short:  "Run a real node's sandbox: its cgroup, namespaces and init (started by the lab in the node's network namespace)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE:   func(*cobra.Command, []string) error { return lab.RunNodeSandbox(spec) },
	}
	c.Flags().StringVar(&spec, "spec", "", "sandbox spec (JSON)")
	return c
}

func labNodeInit() *cobra.Command {
	var spec string
	c := &cobra.Command{
		Use:    "node-init --spec PATH",
		Short:  "PID 1 of a real node's sandbox: mounts, then containerd and the kubelet, supervised",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE:   func(*cobra.Command, []string) error { return lab.RunNodeInit(spec) },
	}
	c.Flags().StringVar(&spec, "spec", "", "sandbox spec (JSON)")
	return c
}

func labLogs() *cobra.Command {
	var name, node string
	c := &cobra.Command{
		Use:   "logs [--name LAB] [--node NODE] DAEMON",
		Short: "Print the log of a lab daemon (kube-apiserver, flanneld-NODE, cnilab-agent-NODE, node-role-NODE, console-NODE …); --node reads it inside a qemu node",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := findLab(name)
			if err != nil {
				return err
			}
			b, err := lab.ReadLog(cmd.Context(), cl, node, args[0])
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	c.Flags().StringVar(&name, "name", config.DefaultName, "lab name")
	c.Flags().StringVar(&node, "node", "", "read the log inside this node's VM (qemu provider)")
	return c
}

func labCheckIsolation() *cobra.Command {
	cfg := config.Default()
	c := &cobra.Command{
		Use:    "check-isolation --name LAB --underlay CIDR --cluster-cidr CIDR",
		Short:  "Check, on a VM node, that no namespace can reach outside the lab (run by the lab)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lab.CheckNodeIsolation(cfg); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "isolated")
			return nil
		},
	}
	c.Flags().StringVar(&cfg.Name, "name", cfg.Name, "lab name")
	c.Flags().StringVar(&cfg.Underlay, "underlay", cfg.Underlay, "underlay CIDR")
	c.Flags().StringVar(&cfg.ClusterCIDR, "cluster-cidr", cfg.ClusterCIDR, "cluster CIDR")
	return c
}

func labGuestRelay() *cobra.Command {
	var port, socket string
	var forwards []string
	c := &cobra.Command{
		Use:    "guest-relay --port PATH --socket PATH [--forward LISTEN=unix:PATH]",
		Short:  "Hold a QEMU guest's control port and serve it on a unix socket (started by the lab)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return guest.RunRelay(cmd.Context(), port, socket, forwards, cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&port, "port", "", "QEMU chardev socket of the guest's control port")
	c.Flags().StringVar(&socket, "socket", "", "unix socket to serve")
	c.Flags().StringArrayVar(&forwards, "forward", nil, "make a guest socket reachable: LISTEN=unix:PATH")
	return c
}

func labPortForward() *cobra.Command {
	var fd int
	var target string
	c := &cobra.Command{
		Use:    "port-forward --fd N --target HOST:PORT",
		Short:  "Forward an inherited listening socket to a target (started by the lab)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := portforward.ListenerFromFD(uintptr(fd))
			if err != nil {
				return err
			}
			return portforward.Serve(cmd.Context(), l, target)
		},
	}
	c.Flags().IntVar(&fd, "fd", 3, "inherited listener descriptor")
	c.Flags().StringVar(&target, "target", "", "address to forward to")
	return c
}

// findLab finds a lab on this machine by name, whatever its provider (netns
// and qemu labs share one state layout).
func findLab(name string) (lab.Cluster, error) {
	p, err := lab.NewProvider("netns", nil)
	if err != nil {
		return nil, err
	}
	return p.Get(name)
}
