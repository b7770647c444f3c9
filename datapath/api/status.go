package api

import (
	"encoding/json"
	"fmt"
	"time"
)

// AgentStatusAnnotation is the annotation each agent keeps on its own Node
// (written through the nodes/status subresource): an AgentStatus as compact
// JSON. `cnilab status` reads it from the API server, so it works wherever
// the Nodes can be listed, whatever the provider.
const AgentStatusAnnotation = "cnilab.io/agent-status"

// AgentStatusRefresh is how often an agent rewrites its annotation when
// nothing in it changed, only to move Updated: a reader can take a status
// older than 2×AgentStatusRefresh as stale (the agent is gone or cannot
// reach the API server). Changes are written sooner: readiness changes at
// once, other changes (endpoint or policy counts) within AgentStatusMinInterval.
const AgentStatusRefresh = 5 * time.Minute

// AgentStatusMinInterval is the shortest time between two writes of the
// annotation other than at start, on readiness changes and at shutdown.
const AgentStatusMinInterval = 30 * time.Second

// AgentStatus is what an agent publishes about itself to the API server.
type AgentStatus struct {
	// Ready is the agent's /healthz: datapath loaded, node state reconciled,
	// CNI configuration written.
	Ready bool `json:"ready"`
	// Phase says what a not-ready agent is doing or waiting for, e.g.
	// "waiting for the node's podCIDR" or "stopped"; empty when ready.
	Phase string `json:"phase,omitempty"`
	// Kernel is the node's kernel release (uname -r).
	Kernel string `json:"kernel"`
	// AttachMode is how the programs are attached ("tcx" or "tc"); empty
	// until the datapath is loaded.
	AttachMode  string `json:"attachMode,omitempty"`
	RoutingMode string `json:"routingMode"` // native or vxlan
	// Features are the datapath's probed kernel features by name (tcx,
	// redirectPeer, ringBuf); empty until the datapath is loaded.
	Features map[string]bool `json:"features,omitempty"`
	// Endpoints is the number of pod endpoints on the node.
	Endpoints int `json:"endpoints"`
	// Policies is the number of NetworkPolicies in the last compilation.
	Policies int `json:"policies"`
	// Version is the agent's build version.
	Version string `json:"version"`
	// Updated is when the agent wrote this (UTC, second precision).
	Updated time.Time `json:"updated"`
}

// ParseAgentStatus decodes the AgentStatusAnnotation of a Node's
// annotations; ok is false when the annotation is absent.
func ParseAgentStatus(annotations map[string]string) (s AgentStatus, ok bool, err error) {
	v, ok := annotations[AgentStatusAnnotation]
	if !ok {
		return s, false, nil
	}
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return s, true, fmt.Errorf("annotation %s: %w", AgentStatusAnnotation, err)
	}
	return s, true, nil
}
