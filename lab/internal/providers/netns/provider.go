// Package netns is the local-cluster engine: a lab-owned underlay namespace
// with a bridge, a real control plane in it, and nodes made by a node
// backend, light (the lab's own node role) or real (containerd and the
// kubelet). Its own backend makes every node a network namespace (a sandbox,
// for real nodes) of this machine: the netns provider. The qemu provider is
// this engine with the VM backend of package qemu, handed in as a value
// (Provider.Backends).
package netns

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cnilab/cnilab/lab/config"
	labns "github.com/cnilab/cnilab/lab/internal/netns"
)

// Provider creates and finds the engine's labs.
type Provider struct {
	StateDir string
	// Backends are the node backends of providers other than netns, by
	// provider name ("qemu").
	Backends map[string]NodeBackend
}

const stateFile = "lab.json"

// Get loads an existing lab.
func (p Provider) Get(name string) (*Cluster, error) {
	b, err := os.ReadFile(filepath.Join(p.StateDir, name, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no lab named %q (see 'cnilab lab list')", name)
	}
	if err != nil {
		return nil, fmt.Errorf("load lab %s: %w", name, err)
	}
	var c config.Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("load lab %s: %w", name, err)
	}
	be, err := p.backendFor(c.Provider)
	if err != nil {
		return nil, fmt.Errorf("load lab %s: %w", name, err)
	}
	return &Cluster{cfg: c, backend: be}, nil
}

// List returns the names of labs with state on this machine, and of labs that
// left namespaces behind without state.
func (p Provider) List() ([]string, error) {
	seen := map[string]bool{}
	entries, err := os.ReadDir(p.StateDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list labs: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			seen[e.Name()] = true
		}
	}
	nss, err := labns.List(config.NetnsPrefix)
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		if name, _, ok := cutLabName(ns); ok {
			seen[name] = true
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// cutLabName splits "cnilab.<lab>.<rest>".
func cutLabName(ns string) (lab, rest string, ok bool) {
	if len(ns) <= len(config.NetnsPrefix) {
		return "", "", false
	}
	s := ns[len(config.NetnsPrefix):]
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return s[:i], s[i+1:], i > 0
		}
	}
	return "", "", false
}
