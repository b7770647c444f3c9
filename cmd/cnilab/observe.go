package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/cnilab/cnilab/datapath/api"
	"github.com/cnilab/cnilab/datapath/flows"
	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/config"
)

func observeCommand() *cobra.Command {
	var name, node, namespace, pod, verdict, output, since string
	var follow bool
	var last int
	c := &cobra.Command{
		Use:   "observe [--name LAB] [--node N] [--namespace NS] [--pod NS/NAME] [--verdict V] [--follow] [--output table|json]",
		Short: "Show the flows the cnilab agents saw, merged across nodes in time order (like hubble observe)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return usageError{fmt.Errorf("--output %q: want table or json", output)}
			}
			q := url.Values{}
			for k, v := range map[string]string{"namespace": namespace, "pod": pod, "verdict": strings.ToUpper(verdict), "since": since} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if last > 0 {
				q.Set("last", fmt.Sprint(last))
			}
			if _, err := flows.ParseFilter(q); err != nil {
				return usageError{err}
			}
			cl, err := findLab(name)
			if err != nil {
				return err
			}
			socks, ok := cl.(lab.AgentSocketer)
			if !ok {
				return fmt.Errorf("provider %s has no agent sockets", cl.Provider())
			}
			var nodes []string
			for _, n := range cl.Nodes() {
				if node == "" || n.Name == node {
					nodes = append(nodes, n.Name)
				}
			}
			if len(nodes) == 0 {
				return usageError{fmt.Errorf("no node %q in lab %s", node, name)}
			}
			print := printer(cmd.OutOrStdout(), output)
			if follow {
				q.Set("follow", "true")
				return followFlows(cmd.Context(), socks, nodes, q, print)
			}
			all, err := collectFlows(cmd.Context(), socks, nodes, q)
			if err != nil {
				return err
			}
			for _, f := range all {
				print(f)
			}
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", config.DefaultName, "lab name")
	c.Flags().StringVar(&node, "node", "", "only this node's flows")
	c.Flags().StringVar(&namespace, "namespace", "", "flows from or to this namespace")
	c.Flags().StringVar(&pod, "pod", "", "flows from or to this pod (NS/NAME)")
	c.Flags().StringVar(&verdict, "verdict", "", "FORWARDED or DROPPED")
	c.Flags().StringVar(&since, "since", "", "only flows after this (RFC 3339 time or a duration such as 5m)")
	c.Flags().IntVar(&last, "last", 0, "only the last N flows of each node")
	c.Flags().BoolVar(&follow, "follow", false, "keep printing new flows")
	c.Flags().StringVar(&output, "output", "table", "table or json")
	return c
}

type timedFlow struct {
	flows.Flow
	raw []byte
}

func collectFlows(ctx context.Context, socks lab.AgentSocketer, nodes []string, q url.Values) ([]timedFlow, error) {
	var all []timedFlow
	for _, n := range nodes {
		sock, err := socks.AgentSocket(n)
		if err != nil {
			return nil, err
		}
		err = api.NewClient(sock).Flows(ctx, q, func(line []byte) error {
			var f flows.Flow
			if err := json.Unmarshal(line, &f); err != nil {
				return fmt.Errorf("node %s: bad flow: %w", n, err)
			}
			all = append(all, timedFlow{f, append([]byte(nil), line...)})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n, err)
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	return all, nil
}

func followFlows(ctx context.Context, socks lab.AgentSocketer, nodes []string, q url.Values, print func(timedFlow)) error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		sock, err := socks.AgentSocket(n)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- api.NewClient(sock).Flows(ctx, q, func(line []byte) error {
				var f flows.Flow
				if json.Unmarshal(line, &f) != nil {
					return nil
				}
				mu.Lock()
				print(timedFlow{f, line})
				mu.Unlock()
				return nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

// printer renders flows as JSON lines or as hubble observe's table lines.
func printer(w io.Writer, output string) func(timedFlow) {
	if output == "json" {
		return func(f timedFlow) { fmt.Fprintln(w, string(f.raw)) }
	}
	return func(f timedFlow) {
		reason := ""
		if f.DropReasonName != "" {
			reason = " " + f.DropReasonName
		}
		reply := ""
		if f.IsReply {
			reply = " (reply)"
		}
		fmt.Fprintf(w, "%s [%s]: %s -> %s %s %s%s%s (%s)\n",
			f.Time.Local().Format("Jan _2 15:04:05.000"), f.NodeName,
			endpoint(f.Source, f.IP.Source, srcPort(&f.Flow)), endpoint(f.Destination, f.IP.Destination, dstPort(&f.Flow)),
			strings.ToLower(f.TrafficDirection), f.Verdict, reason, reply, f.Summary)
	}
}

func endpoint(e flows.FlowEndpoint, ip string, port uint16) string {
	s := ip
	if e.PodName != "" {
		s = e.Namespace + "/" + e.PodName
	}
	if port != 0 {
		s += fmt.Sprintf(":%d", port)
	}
	if e.Identity != 0 {
		s += fmt.Sprintf(" (ID:%d)", e.Identity)
	}
	return s
}

func srcPort(f *flows.Flow) uint16 { p, _ := f.Ports(); return p }
func dstPort(f *flows.Flow) uint16 { _, p := f.Ports(); return p }
