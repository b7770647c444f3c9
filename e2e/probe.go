package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/probe"
)

// From says where a probe runs: in a pod, or on a node.
type From struct {
	Namespace, Pod string
	Node           string
}

func (f From) String() string {
	if f.Node != "" {
		return "node " + f.Node
	}
	return "pod " + f.Namespace + "/" + f.Pod
}

// Probe runs cnilab-probe connect from f to target and returns its result.
// An error means the probe could not be run at all, not that it failed.
func Probe(ctx context.Context, cl lab.Cluster, f From, proto probe.Protocol, target string, timeout time.Duration) (probe.Result, error) {
	argv := []string{"cnilab-probe", "connect", "--protocol", string(proto), "--timeout", timeout.String(), target}
	var res lab.ExecResult
	var err error
	if f.Node != "" {
		res, err = cl.ExecNode(ctx, f.Node, argv)
	} else {
		res, err = cl.ExecPod(ctx, f.Namespace, f.Pod, argv)
	}
	if err != nil {
		return probe.Result{}, err
	}
	if res.ExitCode > 1 {
		return probe.Result{}, fmt.Errorf("probe from %s exited %d: %s", f, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	var r probe.Result
	if err := json.Unmarshal(res.Stdout, &r); err != nil {
		return probe.Result{}, fmt.Errorf("probe from %s: bad output %q: %w", f, res.Stdout, err)
	}
	return r, nil
}
