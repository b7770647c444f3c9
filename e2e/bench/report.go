// Package bench measures the pod network the way netperf users do: pod→pod
// TCP_STREAM, TCP_RR, TCP_CRR and UDP_RR, same-node and cross-node, for
// cnilab (native routing and VXLAN), flannel and the limit (a bare veth
// between two namespaces; the bare underlay between two node namespaces),
// every variant in one run, interleaved and repeated. It also measures how
// cnilab scales with NetworkPolicies and how lab bring-up scales with nodes.
//
// The results are a [Report] (bench.json), a Markdown table with ratios to
// flannel and to the limit, and an SVG plot.
package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The variants compared on every row. "limit" is what the kernel does with no
// CNI at all: the ceiling a CNI can approach.
const (
	VariantCnilab      = "cnilab"
	VariantCnilabVXLAN = "cnilab-vxlan"
	VariantFlannel     = "flannel"
	VariantLimit       = "limit"
)

// Variants lists the variants in the order tables show them.
var Variants = []string{VariantLimit, VariantCnilab, VariantCnilabVXLAN, VariantFlannel}

// Placements of the client relative to the server.
const (
	SameNode  = "same-node"
	CrossNode = "cross-node"
)

// Placements lists the placements in table order.
var Placements = []string{SameNode, CrossNode}

// Report is bench.json.
type Report struct {
	// Kernel is the release of the kernel every variant ran on.
	Kernel  string    `json:"kernel"`
	Started time.Time `json:"started"`
	// Seconds is the wall time of the whole bench.
	Seconds     float64 `json:"seconds"`
	Repetitions int     `json:"repetitions"`
	Warmup      string  `json:"warmup"`
	Duration    string  `json:"duration"`
	// CPUs is the number of CPUs the machine had: every variant shares them.
	CPUs int `json:"cpus"`
	// Baseline is the other build the @base variants ran (Options.Baseline).
	Baseline string `json:"baseline,omitempty"`
	Rows     []Row  `json:"rows"`
	Scale    *Scale `json:"scale,omitempty"`
	// Notes are what a reader must know to trust the numbers (MTUs, …).
	Notes []string `json:"notes,omitempty"`
}

// Row is one test, placement and variant: the median of its runs. Higher is
// better in every unit.
type Row struct {
	Test      string    `json:"test"`
	Placement string    `json:"placement"`
	Variant   string    `json:"variant"`
	Median    float64   `json:"median"`
	Unit      string    `json:"unit"`
	Runs      []float64 `json:"runs"`
	// P50US and P99US are the medians over the runs of each run's latency
	// percentiles (request/response tests).
	P50US float64 `json:"p50_us,omitempty"`
	P99US float64 `json:"p99_us,omitempty"`
	// Errors are the runs that failed, with why.
	Errors []string `json:"errors,omitempty"`
}

// Scale is how cnilab behaves as policies and nodes grow.
type Scale struct {
	Policies []PolicyScale  `json:"policies,omitempty"`
	Bringup  []BringupScale `json:"bringup,omitempty"`
}

// PolicyScale is cnilab with Count NetworkPolicies selecting the server.
type PolicyScale struct {
	Count int `json:"count"`
	// Rows are TCP_RR and TCP_CRR, same-node and cross-node, with the
	// policies in force (variant "cnilab").
	Rows []Row `json:"rows"`
	// AllowMS and DenyMS are how long after a policy was created (deleted)
	// the client's new connections got through (were dropped), in
	// milliseconds, one per repetition.
	AllowMS []float64 `json:"allow_ms"`
	DenyMS  []float64 `json:"deny_ms"`
	// ApplySeconds is how long creating the policies through the API took.
	ApplySeconds float64 `json:"apply_seconds"`
}

// BringupScale is the time to bring up a lab of Nodes nodes.
type BringupScale struct {
	CNI     string  `json:"cni"`
	Nodes   int     `json:"nodes"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

// Median of xs, 0 for none. It does not change xs.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// Find returns the row of test, placement and variant.
func Find(rows []Row, test, placement, variant string) (Row, bool) {
	for _, r := range rows {
		if r.Test == test && r.Placement == placement && r.Variant == variant {
			return r, true
		}
	}
	return Row{}, false
}

// Ratio is the median of variant a over that of b on the same test and
// placement; ok is false when either is missing or b is zero.
func Ratio(rows []Row, test, placement, a, b string) (float64, bool) {
	ra, okA := Find(rows, test, placement, a)
	rb, okB := Find(rows, test, placement, b)
	if !okA || !okB || rb.Median == 0 || len(ra.Runs) == 0 {
		return 0, false
	}
	return ra.Median / rb.Median, true
}

// Behind lists, for each cnilab variant, the tests and placements where
// its median is below flannel's: where to look first with a profiler.
func Behind(rows []Row) []string {
	var out []string
	for _, r := range rows {
		if r.Variant != VariantCnilab && r.Variant != VariantCnilabVXLAN {
			continue
		}
		ratio, ok := Ratio(rows, r.Test, r.Placement, r.Variant, VariantFlannel)
		if !ok || ratio >= 1 {
			continue
		}
		f, _ := Find(rows, r.Test, r.Placement, VariantFlannel)
		out = append(out, fmt.Sprintf("%s %s %s: %.2f× flannel (%s vs %s %s)%s",
			r.Variant, r.Test, r.Placement, ratio, num(r.Median), num(f.Median), r.Unit, hint(r)))
	}
	return out
}

// hint says what to look at when a row is behind.
func hint(r Row) string {
	switch {
	case r.Test == "TCP_STREAM" && r.Variant == VariantCnilabVXLAN:
		return "; check the VXLAN device's GSO/GRO offloads and the MTU (ip -d link show cnilab_vxlan)"
	case r.Test == "TCP_CRR":
		return "; new connections take the policy and conntrack-create path: profile with bpftool prog profile on cnilab_from_container"
	case r.Placement == SameNode:
		return "; same-node traffic should be one redirect: check that bpf_redirect_peer is used (cnilab status)"
	}
	return "; compare per-packet cost with go test -bench FromContainer ./datapath/loader/"
}

// num formats a median with three significant digits or more.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// Write writes r as dir/bench.json.
func Write(dir string, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode bench report: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench output: %w", err)
	}
	return writeFile(filepath.Join(dir, "bench.json"), append(b, '\n'))
}

// Read reads dir/bench.json.
func Read(dir string) (*Report, error) {
	b, err := os.ReadFile(filepath.Join(dir, "bench.json"))
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, "bench.json"), err)
	}
	return &r, nil
}

// writeFile replaces path with b atomically.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
