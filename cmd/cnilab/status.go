package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cnilab/cnilab/datapath/api"
	"github.com/cnilab/cnilab/lab/config"
)

// statusStaleAfter is the age past which a published agent status counts as
// stale (the agent is gone or cannot reach the API server): twice the
// interval at which an idle agent republishes it.
const statusStaleAfter = 2 * api.AgentStatusRefresh

// statusPollInterval is how often --wait (and install) re-read the Nodes.
const statusPollInterval = 2 * time.Second

func statusCommand() *cobra.Command {
	var kubeconfig, name, output string
	var wait bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "status [--kubeconfig PATH | --name LAB] [--wait [--timeout 5m]] [-o table|json]",
		Short: "Show every node's cnilab agent as it publishes itself to the API server; fails unless all are ready",
		Long: fmt.Sprintf(`Read the status every node's agent publishes on its Node (annotation
%s) and print it. A node whose agent never published counts as
"no status"; a report older than %s (an idle agent republishes every %s)
counts as "stale": neither is ready.

With --wait, wait until every node's agent is ready, however old its last
report (as long as it is not stale); return at once when they already are.`,
			api.AgentStatusAnnotation, statusStaleAfter, api.AgentStatusRefresh),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := statusClient(kubeconfig, name)
			if err != nil {
				return usageError{err}
			}
			return runStatus(cmd.Context(), client, statusOptions{wait: wait, timeout: timeout, output: output,
				interval: statusPollInterval}, cmd.OutOrStdout())
		},
	}
	c.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: $KUBECONFIG, else the lab's)")
	c.Flags().StringVar(&name, "name", config.DefaultName, "lab whose kubeconfig to use when no kubeconfig is given")
	c.Flags().BoolVar(&wait, "wait", false, "wait until every node's agent is ready (returns at once if they are)")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	c.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return c
}

type statusOptions struct {
	wait     bool
	timeout  time.Duration
	interval time.Duration
	output   string
}

// runStatus is `cnilab status`: read (with wait: until all are ready or
// the timeout passes), print, and fail naming the nodes that are not ready.
func runStatus(ctx context.Context, client kubernetes.Interface, o statusOptions, out io.Writer) error {
	rows, err := pollStatus(ctx, client, o.timeout, o.interval, func(rows []statusRow) bool {
		// Readiness only: any report that is not stale counts, however old.
		return !o.wait || allReady(rows, time.Time{})
	})
	if err != nil {
		return err
	}
	if o.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return err
		}
	} else {
		renderStatus(out, rows, time.Now())
	}
	if len(rows) == 0 {
		return fmt.Errorf("the cluster has no nodes")
	}
	if ready := countReady(rows); ready != len(rows) {
		if o.wait {
			return fmt.Errorf("%d/%d agents ready after %s; not ready: %s", ready, len(rows), o.timeout, notReady(rows))
		}
		return fmt.Errorf("%d/%d agents ready; not ready: %s", ready, len(rows), notReady(rows))
	}
	return nil
}

// notReady names the nodes whose agent is not ready, with their state.
func notReady(rows []statusRow) string {
	var names []string
	for _, r := range rows {
		if r.State != "ready" {
			names = append(names, fmt.Sprintf("%s (%s)", r.Node, r.State))
		}
	}
	return strings.Join(names, ", ")
}

func statusClient(kubeconfig, lab string) (kubernetes.Interface, error) {
	kubeconfig = kubeconfigPath(kubeconfig, lab)
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return kubernetes.NewForConfig(rc)
}

// pollStatus reads every node's published agent status every interval until
// done accepts the rows or timeout passes, and returns the last rows.
func pollStatus(ctx context.Context, client kubernetes.Interface, timeout, interval time.Duration, done func([]statusRow) bool) ([]statusRow, error) {
	deadline := time.Now().Add(timeout)
	for {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		rows := statusRows(nodes.Items, time.Now())
		if done(rows) || time.Now().After(deadline) {
			return rows, nil
		}
		select {
		case <-ctx.Done():
			return rows, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// kubeconfigPath is the kubeconfig to use: the explicit one, else
// $KUBECONFIG, else the kubeconfig of the named lab.
func kubeconfigPath(kubeconfig, lab string) string {
	if kubeconfig == "" {
		kubeconfig = os.Getenv("KUBECONFIG")
	}
	if kubeconfig == "" {
		dir := os.Getenv("CNILAB_STATE_DIR")
		if dir == "" {
			dir = config.DefaultStateDir
		}
		kubeconfig = filepath.Join(dir, lab, "kubeconfig")
	}
	return kubeconfig
}

// statusRow is one node's agent as `cnilab status` shows it.
type statusRow struct {
	Node   string           `json:"node"`
	State  string           `json:"state"` // ready, not ready, stale, no status, invalid
	Detail string           `json:"detail,omitempty"`
	Status *api.AgentStatus `json:"status"`
}

// statusRows reads every node's published agent status (pure: nodes and the
// time in, rows out).
func statusRows(nodes []corev1.Node, now time.Time) []statusRow {
	var rows []statusRow
	for _, n := range nodes {
		r := statusRow{Node: n.Name}
		s, ok, err := api.ParseAgentStatus(n.Annotations)
		switch {
		case !ok:
			r.State, r.Detail = "no status", "agent not running or cannot patch nodes/status"
		case err != nil:
			r.State, r.Detail = "invalid", err.Error()
		default:
			r.Status = &s
			switch age := now.Sub(s.Updated); {
			case age > statusStaleAfter:
				r.State, r.Detail = "stale", "last report "+age.Round(time.Second).String()+" ago"
			case !s.Ready:
				r.State, r.Detail = "not ready", s.Phase
			default:
				r.State = "ready"
			}
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Node < rows[j].Node })
	return rows
}

func countReady(rows []statusRow) int {
	n := 0
	for _, r := range rows {
		if r.State == "ready" {
			n++
		}
	}
	return n
}

// allReady: every node's agent is ready, and (when since is not zero) its
// report is newer than since. Only install passes a since, so that a status
// left by an earlier install does not count; status --wait passes zero.
func allReady(rows []statusRow, since time.Time) bool {
	for _, r := range rows {
		if r.State != "ready" || r.Status.Updated.Before(since.Truncate(time.Second)) {
			return false
		}
	}
	return len(rows) > 0
}

func renderStatus(w io.Writer, rows []statusRow, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tAGENT\tKERNEL\tATTACH\tROUTING\tFEATURES\tENDPOINTS\tPOLICIES\tVERSION\tUPDATED\tDETAIL")
	for _, r := range rows {
		s := r.Status
		if s == nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n", r.Node, r.State, r.Detail)
			continue
		}
		var feats []string
		for k, v := range s.Features {
			if v {
				feats = append(feats, k)
			}
		}
		sort.Strings(feats)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", r.Node, r.State, dash(s.Kernel), dash(s.AttachMode),
			dash(s.RoutingMode), dash(strings.Join(feats, ",")), s.Endpoints, s.Policies, dash(s.Version),
			now.Sub(s.Updated).Round(time.Second), r.Detail)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d/%d agents ready\n", countReady(rows), len(rows))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
