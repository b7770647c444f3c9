package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Labels of the standard model.
const (
	// NamespaceLabel is the label every standard namespace carries with its
	// own name as value (ns=x), as in the upstream suite.
	NamespaceLabel = "ns"
	// PodLabel is the label every standard pod carries with its own name as
	// value (pod=a).
	PodLabel = "pod"
	// NamespaceNameLabel is the immutable label the API server sets on every
	// namespace to the namespace's name (corev1.LabelMetadataName).
	NamespaceNameLabel = corev1.LabelMetadataName
)

// The standard model: its namespaces, pods, ports and protocols.
var (
	StandardNamespaces = []string{"x", "y", "z"}
	StandardPods       = []string{"a", "b", "c"}
	StandardPorts      = []int32{80, 81}
	StandardProtocols  = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
)

// Namespace is a namespace of the model and its labels.
type Namespace struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Pod is a pod of the model: its labels, its IP (filled in at run time once
// the pod is running; empty until then) and its container ports, which
// named ports in policies resolve against.
type Pod struct {
	Namespace string                 `json:"namespace"`
	Name      string                 `json:"name"`
	Labels    map[string]string      `json:"labels,omitempty"`
	IP        string                 `json:"ip,omitempty"`
	Ports     []corev1.ContainerPort `json:"ports,omitempty"`
}

// Key returns "namespace/name", the form pods are named by in probes and
// truth tables.
func (p Pod) Key() string { return p.Namespace + "/" + p.Name }

// Model is a set of namespaces and the pods in them. Models are values:
// every change returns a new model and leaves the old one alone.
type Model struct {
	Namespaces []Namespace `json:"namespaces"`
	Pods       []Pod       `json:"pods"`
}

// NewStandardModel returns the standard model: namespaces x, y, z, each with
// pods a, b, c serving ports 80 and 81 on TCP, UDP and SCTP. Pod IPs are
// empty.
func NewStandardModel() Model {
	var m Model
	for _, ns := range StandardNamespaces {
		m.Namespaces = append(m.Namespaces, StandardNamespace(ns))
		for _, p := range StandardPods {
			m.Pods = append(m.Pods, StandardPod(ns, p))
		}
	}
	return m
}

// StandardNamespace returns namespace name with the standard labels
// ns=<name> and kubernetes.io/metadata.name=<name>.
func StandardNamespace(name string) Namespace {
	return Namespace{Name: name, Labels: map[string]string{NamespaceLabel: name, NamespaceNameLabel: name}}
}

// StandardPod returns pod ns/name with the label pod=<name> and the
// standard container ports.
func StandardPod(ns, name string) Pod {
	return Pod{Namespace: ns, Name: name, Labels: map[string]string{PodLabel: name}, Ports: StandardContainerPorts()}
}

// StandardContainerPorts returns ports 80 and 81 on TCP, UDP and SCTP, named
// serve-<port>-<protocol in lower case> (serve-80-tcp, serve-81-sctp, …).
func StandardContainerPorts() []corev1.ContainerPort {
	var ports []corev1.ContainerPort
	for _, port := range StandardPorts {
		for _, proto := range StandardProtocols {
			ports = append(ports, corev1.ContainerPort{
				Name:          PortName(port, proto),
				ContainerPort: port,
				Protocol:      proto,
			})
		}
	}
	return ports
}

// PortName is the standard name of a container port: serve-80-tcp.
func PortName(port int32, proto corev1.Protocol) string {
	return fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto)))
}

// SplitKey splits "namespace/name".
func SplitKey(key string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(key, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%q is not namespace/name", key)
	}
	return ns, name, nil
}

// Namespace returns the namespace called name.
func (m Model) Namespace(name string) (Namespace, bool) {
	for _, ns := range m.Namespaces {
		if ns.Name == name {
			return ns, true
		}
	}
	return Namespace{}, false
}

// NamespaceLabels returns the labels of namespace name. A namespace missing
// from the model still has the label the API server sets on every
// namespace, kubernetes.io/metadata.name.
func (m Model) NamespaceLabels(name string) map[string]string {
	if ns, ok := m.Namespace(name); ok {
		return ns.Labels
	}
	return map[string]string{NamespaceNameLabel: name}
}

// Pod returns the pod named key ("namespace/name").
func (m Model) Pod(key string) (Pod, bool) {
	for _, p := range m.Pods {
		if p.Key() == key {
			return p, true
		}
	}
	return Pod{}, false
}

// PodKeys returns the keys of all pods, in model order.
func (m Model) PodKeys() []string {
	keys := make([]string, 0, len(m.Pods))
	for _, p := range m.Pods {
		keys = append(keys, p.Key())
	}
	return keys
}

// PodsIn returns the pods of namespace ns, in model order.
func (m Model) PodsIn(ns string) []Pod {
	var pods []Pod
	for _, p := range m.Pods {
		if p.Namespace == ns {
			pods = append(pods, p)
		}
	}
	return pods
}

// Clone returns a deep copy of m.
func (m Model) Clone() Model {
	c := Model{Namespaces: make([]Namespace, len(m.Namespaces)), Pods: make([]Pod, len(m.Pods))}
	for i, ns := range m.Namespaces {
		c.Namespaces[i] = Namespace{Name: ns.Name, Labels: maps.Clone(ns.Labels)}
	}
	for i, p := range m.Pods {
		p.Labels = maps.Clone(p.Labels)
		p.Ports = slices.Clone(p.Ports)
		c.Pods[i] = p
	}
	return c
}
