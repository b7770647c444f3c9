// Package report is the machine-readable record of e2e runs: report.json holds
// one Run per suite run (provider, CNI, kernel, counts, and every spec), and
// Summary renders a run as the one-screen summary `make e2e` prints. Merge
// gathers the reports of several jobs (one per kernel, say), and
// RenderMarkdown and RenderHTML turn them into the kernel compatibility
// report: a job summary and a self-contained page with the kernel × check
// matrix.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Spec states.
const (
	Passed  = "passed"
	Failed  = "failed"
	Skipped = "skipped"
)

// Spec is one spec of a run.
type Spec struct {
	Name     string   `json:"name"`
	Labels   []string `json:"labels"`
	State    string   `json:"state"`
	Reason   string   `json:"reason,omitempty"`
	Seconds  float64  `json:"seconds"`
	Location string   `json:"location,omitempty"`
}

// Run is one suite run against one cluster.
type Run struct {
	Provider string `json:"provider"`
	CNI      string `json:"cni"`
	// Kernel is the release the cluster's nodes run (uname -r).
	Kernel string `json:"kernel"`
	// KernelName is the kernel catalog entry the run booted ("6.1", "6.12"),
	// or "host" when the nodes share the machine's kernel.
	KernelName  string    `json:"kernelName,omitempty"`
	LabelFilter string    `json:"labelFilter,omitempty"`
	Started     time.Time `json:"started"`
	Seconds     float64   `json:"seconds"`
	// SetupSeconds is the lab bring-up time within the run.
	SetupSeconds float64 `json:"setupSeconds,omitempty"`
	// BootSeconds is how long the nodes' VMs took to boot (qemu provider).
	BootSeconds float64 `json:"bootSeconds,omitempty"`
	Passed      int     `json:"passed"`
	Failed      int     `json:"failed"`
	Skipped     int     `json:"skipped"`
	Specs       []Spec  `json:"specs"`
	// Failure is set when a suite-level step failed (lab bring-up or teardown).
	Failure string `json:"failure,omitempty"`
	// Datapath is what the CNI's agent reported about itself on the first
	// node (attach mode, kernel features), when it reports anything.
	Datapath map[string]any `json:"datapath,omitempty"`
	// PolicyEnforcement summarises how long policy changes took to show in
	// the probes (seconds), when the run changed policies on an enforcing CNI.
	PolicyEnforcement *Quantiles `json:"policyEnforcement,omitempty"`
	// Nodes says what ran the cluster's nodes.
	Nodes *NodeInfo `json:"nodes,omitempty"`
	// LogDir is where the run's logs were kept: relative to the directory
	// of the report.json holding the run when possible, else absolute.
	LogDir string `json:"logDir,omitempty"`
}

// NodeInfo is what the nodes of a run were, from the first node's status.
type NodeInfo struct {
	// Kind is real (a kubelet and a container runtime) or light (the lab's
	// own node role).
	Kind string `json:"kind"`
	// Kubelet and Runtime are status.nodeInfo's kubeletVersion and
	// containerRuntimeVersion (the light node role reports its own).
	Kubelet string `json:"kubelet,omitempty"`
	Runtime string `json:"runtime,omitempty"`
	// Cgroup is the nodes' cgroup hierarchy: v1 (v1 controllers, the kubelet
	// told failCgroupV1: false) or v2.
	Cgroup string `json:"cgroup,omitempty"`
}

// String is the nodes in one line.
func (n *NodeInfo) String() string {
	if n == nil {
		return ""
	}
	parts := []string{n.Kind + " nodes"}
	for _, p := range []string{n.Kubelet, n.Runtime} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if n.Cgroup != "" {
		parts = append(parts, "cgroup "+n.Cgroup)
	}
	return strings.Join(parts, ", ")
}

// Quantiles summarises a sample of durations in seconds.
type Quantiles struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
}

// Summarise returns the quantiles of xs (nil for an empty sample), by the
// nearest-rank method.
func Summarise(xs []float64) *Quantiles {
	if len(xs) == 0 {
		return nil
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return &Quantiles{Samples: len(s), P50: rank(0.50), P99: rank(0.99), Max: s[len(s)-1]}
}

// File is report.json.
type File struct {
	Runs []Run `json:"runs"`
}

// Count sets the counters from the specs.
func (r *Run) Count() {
	r.Passed, r.Failed, r.Skipped = 0, 0, 0
	for _, s := range r.Specs {
		switch s.State {
		case Passed:
			r.Passed++
		case Failed:
			r.Failed++
		default:
			r.Skipped++
		}
	}
}

// Load reads report.json from dir; a missing file is an empty report.
func Load(dir string) (File, error) {
	var f File
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read report: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("read report %s: %w", filepath.Join(dir, "report.json"), err)
	}
	return f, nil
}

// Append adds a run to dir/report.json under an exclusive lock, so parallel
// runs each keep their entry.
func Append(dir string, run Run) error {
	return withLock(dir, func() error {
		f, err := Load(dir)
		if err != nil {
			return err
		}
		f.Runs = append(f.Runs, run)
		return write(dir, f)
	})
}

// Write replaces dir/report.json with f, under the lock Append takes.
func Write(dir string, f File) error {
	return withLock(dir, func() error { return write(dir, f) })
}

// withLock runs fn holding the exclusive lock on dir's report.
func withLock(dir string, fn func() error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".report.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("lock report: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock report: %w", err)
	}
	return fn()
}

// write replaces dir/report.json with f atomically.
func write(dir string, f File) error {
	if f.Runs == nil {
		f.Runs = []Run{}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "report.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, "report.json"))
}
