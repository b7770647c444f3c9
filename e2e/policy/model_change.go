package policy

import (
	"fmt"
	"maps"
	"slices"
)

// WithNamespaceLabels returns a copy of m where namespace ns has exactly the
// given labels, plus kubernetes.io/metadata.name=<ns>, which the API server
// always sets and which cannot be removed.
func (m Model) WithNamespaceLabels(ns string, labels map[string]string) (Model, error) {
	c := m.Clone()
	for i := range c.Namespaces {
		if c.Namespaces[i].Name == ns {
			l := maps.Clone(labels)
			if l == nil {
				l = map[string]string{}
			}
			l[NamespaceNameLabel] = ns
			c.Namespaces[i].Labels = l
			return c, nil
		}
	}
	return m, fmt.Errorf("namespace %q is not in the model", ns)
}

// WithPodLabels returns a copy of m where pod key has exactly the given
// labels.
func (m Model) WithPodLabels(key string, labels map[string]string) (Model, error) {
	c := m.Clone()
	for i := range c.Pods {
		if c.Pods[i].Key() == key {
			c.Pods[i].Labels = maps.Clone(labels)
			return c, nil
		}
	}
	return m, fmt.Errorf("pod %q is not in the model", key)
}

// WithPodIP returns a copy of m where pod key has the given IP.
func (m Model) WithPodIP(key, ip string) (Model, error) {
	c := m.Clone()
	for i := range c.Pods {
		if c.Pods[i].Key() == key {
			c.Pods[i].IP = ip
			return c, nil
		}
	}
	return m, fmt.Errorf("pod %q is not in the model", key)
}

// WithPodIPs returns a copy of m where each pod named in ips ("ns/name" →
// IP) has that IP: how the suite records the IPs of running pods.
func (m Model) WithPodIPs(ips map[string]string) (Model, error) {
	c := m
	for key, ip := range ips {
		var err error
		if c, err = c.WithPodIP(key, ip); err != nil {
			return m, err
		}
	}
	return c, nil
}

// WithPod returns a copy of m with pod p added. Its namespace must exist and
// its key must be new. A pod without ports gets the standard container
// ports.
func (m Model) WithPod(p Pod) (Model, error) {
	if _, ok := m.Namespace(p.Namespace); !ok {
		return m, fmt.Errorf("pod %q: namespace %q is not in the model", p.Key(), p.Namespace)
	}
	if _, ok := m.Pod(p.Key()); ok {
		return m, fmt.Errorf("pod %q is already in the model", p.Key())
	}
	c := m.Clone()
	p.Labels = maps.Clone(p.Labels)
	p.Ports = slices.Clone(p.Ports)
	if len(p.Ports) == 0 {
		p.Ports = StandardContainerPorts()
	}
	c.Pods = append(c.Pods, p)
	return c, nil
}

// WithoutPod returns a copy of m without pod key.
func (m Model) WithoutPod(key string) (Model, error) {
	if _, ok := m.Pod(key); !ok {
		return m, fmt.Errorf("pod %q is not in the model", key)
	}
	c := m.Clone()
	c.Pods = slices.DeleteFunc(c.Pods, func(p Pod) bool { return p.Key() == key })
	return c, nil
}

// WithSyntheticIPs returns a copy of m where every pod without an IP gets a
// made-up, unique IPv4 address: 10.244.<namespace index+1>.<pod index+10>.
// It is for dry runs and tests; the suite fills in real pod IPs instead.
func (m Model) WithSyntheticIPs() Model {
	c := m.Clone()
	used := map[string]bool{}
	for _, p := range c.Pods {
		used[p.IP] = true
	}
	for i := range c.Pods {
		if c.Pods[i].IP != "" {
			continue
		}
		nsIndex := slices.IndexFunc(c.Namespaces, func(ns Namespace) bool { return ns.Name == c.Pods[i].Namespace })
		host := 10
		for _, p := range c.Pods[:i] {
			if p.Namespace == c.Pods[i].Namespace {
				host++
			}
		}
		ip := fmt.Sprintf("10.244.%d.%d", nsIndex+1, host)
		for used[ip] {
			host++
			ip = fmt.Sprintf("10.244.%d.%d", nsIndex+1, host)
		}
		used[ip] = true
		c.Pods[i].IP = ip
	}
	return c
}
