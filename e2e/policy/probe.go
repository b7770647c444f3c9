package policy

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// Probe is one connection attempt the suite executes: from pod From to pod
// To (both "namespace/name") on Port with Protocol.
type Probe struct {
	From     string          `json:"from"`
	To       string          `json:"to"`
	Port     int32           `json:"port,omitempty"`
	Protocol corev1.Protocol `json:"protocol"`
}

// PortProtocol returns what p targets.
func (p Probe) PortProtocol() PortProtocol { return PortProtocol{Port: p.Port, Protocol: p.Protocol} }

func (p Probe) String() string { return fmt.Sprintf("%s -> %s %s", p.From, p.To, p.PortProtocol()) }

// Probes is a list of probes.
type Probes []Probe

// NewProbes returns a probe for every (from pod, to pod) pair of m,
// including each pod to itself, on every port and protocol of pps, ordered
// by port/protocol, then source, then destination.
func NewProbes(m Model, pps []PortProtocol) Probes {
	var ps Probes
	keys := m.PodKeys()
	for _, pp := range pps {
		for _, from := range keys {
			for _, to := range keys {
				ps = append(ps, Probe{From: from, To: to, Port: pp.Port, Protocol: pp.Protocol})
			}
		}
	}
	return ps
}

// Traffic returns the traffic probe p sends in model m.
func (m Model) Traffic(p Probe) (Traffic, error) {
	from, ok := m.Pod(p.From)
	if !ok {
		return Traffic{}, fmt.Errorf("probe %s: pod %s is not in the model", p, p.From)
	}
	to, ok := m.Pod(p.To)
	if !ok {
		return Traffic{}, fmt.Errorf("probe %s: pod %s is not in the model", p, p.To)
	}
	return PodTraffic(from, to, p.Port, p.Protocol), nil
}
