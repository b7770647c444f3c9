package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/gomega"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnilab/cnilab/datapath/api"
	"github.com/cnilab/cnilab/datapath/flows"
	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/config"
	"github.com/cnilab/cnilab/lab/probe"
)

var createOpts = metav1.CreateOptions{}

// runsCnilab says whether the cluster's CNI is cnilab, as far as the suite
// can tell: the lab installed it, or (CNI=existing) the cluster's provider
// reaches a cnilab agent on its first node. why says what is missing.
func runsCnilab() (yes bool, why string) {
	cni := cluster.CNI()
	switch {
	case strings.HasPrefix(cni, "cnilab"):
		return true, ""
	case cni == config.ExistingCNI:
		socks, ok := cluster.(lab.AgentSocketer)
		if !ok {
			return false, "the existing cluster exposes no cnilab agent to this machine: its CNI is its own, with no flows, metrics or datapath status to read here"
		}
		if _, err := socks.AgentSocket(cluster.Nodes()[0].Name); err != nil {
			return false, "the existing cluster exposes no cnilab agent to this machine: " + err.Error()
		}
		return true, ""
	}
	return false, "not available: " + cni + " has no flow observability (the baseline's expected result)"
}

// cnilabAgents returns how to reach the cluster's cnilab agents (flows,
// metrics), or why the specs that read them cannot run.
func cnilabAgents() (lab.AgentSocketer, string) {
	if ok, why := runsCnilab(); !ok {
		return nil, why
	}
	socks, ok := cluster.(lab.AgentSocketer)
	if !ok {
		return nil, "provider " + cluster.Provider() + " cannot reach the cnilab agents' flows and metrics from this machine"
	}
	return socks, ""
}

// agentFlows reads the flows node's cnilab agent holds that match q.
func agentFlows(ctx context.Context, socks lab.AgentSocketer, node string, q url.Values) []flows.Flow {
	sock, err := socks.AgentSocket(node)
	Expect(err).NotTo(HaveOccurred())
	var out []flows.Flow
	Expect(api.NewClient(sock).Flows(ctx, q, func(line []byte) error {
		var f flows.Flow
		if err := json.Unmarshal(line, &f); err != nil {
			return err
		}
		out = append(out, f)
		return nil
	})).To(Succeed())
	return out
}

// expectAgentFlow waits until node's agent has a flow of namespace ns
// matching want.
func expectAgentFlow(ctx context.Context, socks lab.AgentSocketer, node, ns, what string, want func(f flows.Flow) bool) {
	Eventually(func() bool {
		for _, f := range agentFlows(ctx, socks, node, url.Values{"namespace": {ns}}) {
			if want(f) {
				return true
			}
		}
		return false
	}).WithContext(ctx).WithTimeout(flowDeadline).WithPolling(200*time.Millisecond).Should(BeTrue(), "flow on %s: %s", node, what)
}

// probeUntil probes target from f until it succeeds, probeAttempts times at
// most, and returns the last result.
func probeUntil(ctx context.Context, f From, proto probe.Protocol, target string) probe.Result {
	var last probe.Result
	for i := 0; i < probeAttempts; i++ {
		r, err := Probe(ctx, cluster, f, proto, target, probeTimeout)
		Expect(err).NotTo(HaveOccurred())
		if last = r; r.Success {
			break
		}
	}
	return last
}
