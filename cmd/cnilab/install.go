package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/manifests"
)

func installCommand() *cobra.Command {
	var kubeconfig, name string
	var o manifests.Options
	var dryRun, wait bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "install [--kubeconfig PATH] [--mode native|vxlan] [--dry-run] [--wait=false]",
		Short: "Apply the cnilab DaemonSet, RBAC and configuration to a cluster and wait for every node's agent",
		Long: `Render the cnilab manifests (manifests/cnilab) with the given routing mode,
cluster CIDR and image, server-side apply them to the cluster, and wait until
every node's agent publishes that it is ready in that routing mode (what
'cnilab status --wait' shows). With --dry-run the API server checks every
object and keeps none.

The cluster's nodes must be able to run the cnilab image (make images, then
load or push it) and must not run another CNI.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Sets = []manifests.Set{manifests.Cnilab}
			objs, err := manifests.Render(o)
			if err != nil {
				return usageError{err}
			}
			path := kubeconfigPath(kubeconfig, name)
			client, err := statusClient(kubeconfig, name)
			if err != nil {
				return usageError{err}
			}
			out := cmd.OutOrStdout()
			start := time.Now().Add(-time.Second)
			if err := lab.ApplyManifests(cmd.Context(), path, objs, dryRun); err != nil {
				return err
			}
			for _, u := range objs {
				verb := "applied"
				if dryRun {
					verb = "accepted (dry run)"
				}
				fmt.Fprintf(out, "%s %s\n", manifests.Ref(u), verb)
			}
			if dryRun || !wait {
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
	f.BoolVar(&dryRun, "dry-run", false, "have the API server check every object and keep none")
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
