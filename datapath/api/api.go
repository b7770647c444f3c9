// Package api is the node-local API between the cnilab CNI plugin (and other
// local clients) and the cnilab agent: HTTP with JSON bodies over the agent's
// unix socket. It holds only the wire types, the paths and a small client, so
// both sides agree on one definition.
package api

import "time"

// Paths served by the agent on its unix socket. PathHealthz and PathMetrics
// are also served on its TCP address (--metrics-address), for the kubelet's
// probes and Prometheus.
const (
	PathHealthz   = "/healthz"
	PathStatus    = "/v1/status"
	PathNode      = "/v1/node"      // GET: NodeInfo
	PathEndpoints = "/v1/endpoints" // GET: []Endpoint; PUT/DELETE PathEndpoints + "/" + containerID
	PathFlows     = "/v1/flows"     // GET: JSON lines of flows (datapath/flows filters; follow=true streams)
	PathMetrics   = "/metrics"      // Prometheus exposition
	PathMaps      = "/v1/maps"      // GET: entries per state map, {"cnilab_ct": 3, …}
	PathConntrack = "/v1/conntrack" // GET: []ConntrackEntry, the tracked connections
)

// NodeInfo is what the CNI plugin needs from the agent before an ADD.
type NodeInfo struct {
	NodeName string `json:"nodeName"`
	// PodCIDR is the node's spec.podCIDR, e.g. "10.244.1.0/24".
	PodCIDR string `json:"podCIDR"`
	// Gateway is the address pods use as their default gateway: the first
	// address of PodCIDR, which the node owns.
	Gateway string `json:"gateway"`
	// GatewayMAC is the MAC pods must use for Gateway: each pod gets a static
	// neighbour entry, so there is no ARP for the gateway. Empty means the
	// plugin uses the host-side veth's own MAC.
	GatewayMAC string `json:"gatewayMAC,omitempty"`
	MTU        int    `json:"mtu"`
	// Ready is false until the agent has loaded its datapath and reconciled.
	Ready bool `json:"ready"`
}

// Endpoint is one pod interface as registered by the CNI plugin.
type Endpoint struct {
	ContainerID  string `json:"containerID"`
	IfName       string `json:"ifName"` // in the pod, e.g. eth0
	Netns        string `json:"netns"`  // path of the pod's network namespace
	PodNamespace string `json:"podNamespace,omitempty"`
	PodName      string `json:"podName,omitempty"`
	PodUID       string `json:"podUID,omitempty"`
	IP           string `json:"ip"`     // the pod's IPv4 address, no prefix
	PodMAC       string `json:"podMAC"` // MAC of IfName inside the pod
	HostIfName   string `json:"hostIfName"`
	HostIfIndex  int    `json:"hostIfIndex"`
	HostMAC      string `json:"hostMAC"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Message string `json:"message"`
}

// ConntrackEntry is one connection the datapath tracks (cnilab_ct), as its
// first packet went: GET PathConntrack lists them, like `cilium bpf ct list`.
type ConntrackEntry struct {
	// Proto is tcp, udp, sctp or icmp (the IP protocol number otherwise).
	Proto string `json:"proto"`
	// Src and Dst are "address:port" (port 0 where the protocol has none).
	Src string `json:"src"`
	Dst string `json:"dst"`
	// Created and LastSeen (refreshed at most once a second) in wall time.
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"lastSeen"`
	// ReplySeen: a packet went the other way; Closing: a FIN or RST was seen.
	ReplySeen bool `json:"replySeen"`
	Closing   bool `json:"closing"`
}
