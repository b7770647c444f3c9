package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/manifests"
)

func installCommand() *cobra.Command {
	var kubeconfig, name string
	var o manifests.Options
	var dryRun, output string
	var wait, memlock bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "install [--kubeconfig PATH] [--mode native|vxlan] [--dry-run[=server|client] [-o yaml|json]] [--wait=false]",
		Short: "Apply the cnilab DaemonSet, RBAC and configuration to a cluster and wait for every node's agent",
		Long: `Render the cnilab Helm chart (manifests/charts/cnilab, with Helm's engine and
the chart's values schema) with the given routing mode, cluster CIDR and
image, server-side apply it to the cluster, and wait until every node's agent
publishes that it is ready in that routing mode (what 'cnilab status --wait'
shows). With --dry-run (or --dry-run=server) the API server checks every
object and keeps none; with --dry-run=client nothing is sent and the rendered
manifests are printed (-o yaml, the default, or -o json), as
'helm template manifests/charts/cnilab' prints them.

The cluster's nodes must be able to run the cnilab image (make images, then
load or push it) and must not run another CNI.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Sets = []manifests.Set{manifests.Cnilab}
			o.NoMemlockCapability = !memlock
			if err := checkDryRun(dryRun, output); err != nil {
				return usageError{err}
			}
			objs, err := manifests.Render(o)
			if err != nil {
				return usageError{err}
			}
			if dryRun == "client" {
				return printObjects(cmd.OutOrStdout(), objs, output)
			}
			server := dryRun == "server"
			path := kubeconfigPath(kubeconfig, name)
			client, err := statusClient(kubeconfig, name)
			if err != nil {
				return usageError{err}
			}
			out := cmd.OutOrStdout()
			start := time.Now().Add(-time.Second)
			if err := lab.ApplyManifests(cmd.Context(), path, objs, server); err != nil {
				return err
			}
			for _, u := range objs {
				verb := "applied"
				if server {
					verb = "accepted (dry run)"
				}
				fmt.Fprintf(out, "%s %s\n", manifests.Ref(u), verb)
			}
			if server || !wait {
				return nil
			}
			mode := o.RoutingMode
			if mode == "" {
				mode = manifests.DefaultRoutingMode
			}
			fmt.Fprintf(out, "waiting up to %s for every node's agent to be ready in %s routing…\n", timeout, mode)
			rows, err := pollStatus(cmd.Context(), client, timeout, statusPollInterval, func(rows []statusRow) bool {
				return installed(rows, start, mode)
			})
			if err != nil {
				return err
			}
			renderStatus(out, rows, time.Now())
			if node := wrongMode(rows, mode); node != "" {
				return fmt.Errorf("the agent on %s runs another routing mode than %s: it was not started from these manifests (another cnilab install, or a lab's own agents)", node, mode)
			}
			if ready := countReady(rows); ready != len(rows) || len(rows) == 0 || !allReady(rows, start) {
				return fmt.Errorf("%d/%d agents ready and reporting after %s: see 'cnilab status' and the agents' logs", ready, len(rows), timeout)
			}
			fmt.Fprintf(out, "cnilab installed: %d/%d agents ready\n", len(rows), len(rows))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: $KUBECONFIG, else the lab's)")
	f.StringVar(&name, "name", config.DefaultName, "lab whose kubeconfig to use when no kubeconfig is given")
	f.StringVar(&o.RoutingMode, "mode", manifests.DefaultRoutingMode, "routing between nodes: native or vxlan")
	f.StringVar(&o.ClusterCIDR, "cluster-cidr", manifests.DefaultClusterCIDR, "the pod network the nodes' PodCIDRs come from")
	f.StringVar(&o.ServiceCIDR, "service-cidr", manifests.DefaultServiceCIDR, "the cluster's Service network (kube-apiserver --service-cluster-ip-range)")
	f.StringVar(&o.Image, "image", manifests.DefaultImage, "the cnilab image")
	f.StringVar(&o.Namespace, "namespace", manifests.DefaultNamespace, "namespace of the DaemonSet and its objects")
	f.StringVar(&o.UnderlayDevice, "underlay-device", manifests.DefaultUnderlayDevice, "each node's device toward the other nodes")
	f.StringVar(&o.APIServer, "api-server", "", "host:port of the API server for the agents, where the kubernetes Service is not reachable from the host network")
	f.StringVar(&dryRun, "dry-run", "none", "server: have the API server check every object and keep none; client: print the rendered manifests and send nothing")
	f.Lookup("dry-run").NoOptDefVal = "server"
	f.StringVarP(&output, "output", "o", "", "with --dry-run=client: yaml (default) or json")
	f.BoolVar(&memlock, "memlock-capability", true, "give the agents CAP_SYS_RESOURCE (lifts RLIMIT_MEMLOCK on kernels before 5.11); false where the runtime cannot grant it")
	f.BoolVar(&wait, "wait", true, "wait until every agent is ready")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait")
	return c
}

// installed: every node's agent is ready in mode and has reported since the
// install began (a status left by an earlier install does not count).
func installed(rows []statusRow, start time.Time, mode string) bool {
	return allReady(rows, start) && wrongMode(rows, mode) == ""
}

// wrongMode names a node whose agent reports a routing mode other than
// mode, or "" if none does.
func wrongMode(rows []statusRow, mode string) string {
	for _, r := range rows {
		if r.Status != nil && r.Status.RoutingMode != "" && r.Status.RoutingMode != mode {
			return r.Node
		}
	}
	return ""
}

// checkDryRun checks --dry-run and --output together.
func checkDryRun(dryRun, output string) error {
	switch dryRun {
	case "none", "server", "client":
	default:
		return fmt.Errorf("--dry-run=%s: want server or client", dryRun)
	}
	if output != "" && dryRun != "client" {
		return errors.New("--output prints the rendered manifests: it needs --dry-run=client")
	}
	if output != "" && output != "yaml" && output != "json" {
		return fmt.Errorf("--output %s: want yaml or json", output)
	}
	return nil
}

// printObjects writes objs as a YAML stream (documents separated by ---)
// or, for json, as a v1 List.
func printObjects(w io.Writer, objs []*unstructured.Unstructured, output string) error {
	if output == "json" {
		items := make([]any, len(objs))
		for i, u := range objs {
			items[i] = u.Object
		}
		b, err := json.MarshalIndent(map[string]any{"apiVersion": "v1", "kind": "List", "items": items}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	for _, u := range objs {
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return fmt.Errorf("%s: %w", manifests.Ref(u), err)
		}
		if _, err := fmt.Fprintf(w, "---\n%s", b); err != nil {
			return err
		}
	}
	return nil
}
