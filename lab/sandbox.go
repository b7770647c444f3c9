package lab

import (
	"fmt"
	"os"
	"time"

	"github.com/cnilab/cnilab/lab/internal/sandbox"
)

// RunNodeSandbox is the launcher of a real node's sandbox (`cnilab lab
// node-sandbox`): it runs the node's init, this executable's `lab
// node-init`, in the node's own namespaces and cgroup until it ends.
func RunNodeSandbox(specPath string) error {
	spec, err := sandbox.ReadSpec(specPath)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("node %s: %w", spec.Node, err)
	}
	return sandbox.Launch(spec, []string{self, "lab", "node-init", "--spec", specPath})
}

// nodeStopGrace is how long a real node's daemons get to stop on SIGTERM.
const nodeStopGrace = 15 * time.Second

// RunNodeInit is PID 1 of a real node's sandbox (`cnilab lab node-init`).
func RunNodeInit(specPath string) error {
	spec, err := sandbox.ReadSpec(specPath)
	if err != nil {
		return err
	}
	return sandbox.Init(spec, nodeStopGrace)
}
