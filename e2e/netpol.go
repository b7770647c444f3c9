package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	pol "github.com/cnilab/cnilab/e2e/policy"
	"github.com/cnilab/cnilab/lab"
	"github.com/cnilab/cnilab/lab/probe"
)

// NetpolCase is one file of NetworkPolicy objects, applied together.
type NetpolCase struct {
	Name     string
	Policies []networkingv1.NetworkPolicy
}

// LoadNetpolCases reads a YAML/JSON file of NetworkPolicies (several
// documents allowed), or every such file of a directory in name order.
func LoadNetpolCases(path string) ([]NetpolCase, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policy path: %w", err)
	}
	files := []string{path}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("policy dir: %w", err)
		}
		files = nil
		for _, e := range entries {
			switch filepath.Ext(e.Name()) {
			case ".yaml", ".yml", ".json":
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("policy dir %s holds no .yaml, .yml or .json file", path)
		}
	}
	var cases []NetpolCase
	for _, f := range files {
		c, err := loadNetpolFile(f)
		if err != nil {
			return nil, err
		}
		cases = append(cases, c)
	}
	return cases, nil
}

func loadNetpolFile(path string) (NetpolCase, error) {
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	c := NetpolCase{Name: name}
	f, err := os.Open(path)
	if err != nil {
		return c, fmt.Errorf("policy file: %w", err)
	}
	defer f.Close()
	// Documents are read as YAML 1.2, so `namespace: y` stays "y" (YAML 1.1
	// would read true), then decoded strictly as JSON.
	rd := utilyaml.NewYAMLReader(bufio.NewReader(f))
	for i := 0; ; i++ {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return c, fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
		np, err := decodeNetpol(doc)
		if err != nil {
			return c, fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
		if np.Kind == "" && np.Name == "" {
			continue // an empty document
		}
		if np.Kind != "NetworkPolicy" {
			return c, fmt.Errorf("%s: document %d is a %q, want NetworkPolicy", path, i+1, np.Kind)
		}
		if np.Namespace == "" {
			return c, fmt.Errorf("%s: policy %s has no metadata.namespace (x, y or z)", path, np.Name)
		}
		if err := pol.Validate(np); err != nil {
			return c, fmt.Errorf("%s: policy %s/%s: %w", path, np.Namespace, np.Name, err)
		}
		c.Policies = append(c.Policies, np)
	}
	if len(c.Policies) == 0 {
		return c, fmt.Errorf("%s holds no NetworkPolicy", path)
	}
	return c, nil
}

// NetpolProbe is one observed probe.
type NetpolProbe struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Port      int32  `json:"port"`
	Protocol  string `json:"protocol"`
	Connected bool   `json:"connected"`
}

// NetpolCaseResult is what one case observed.
type NetpolCaseResult struct {
	Name   string        `json:"name"`
	Probes []NetpolProbe `json:"probes"`
	// Skipped lists the ports/protocols not probed (the kernel lacks them).
	Skipped []string `json:"skipped,omitempty"`
	// MatchesOracle says whether the observation equals the oracle's
	// expectation for this CNI (flannel: nothing enforced).
	MatchesOracle bool `json:"matchesOracle"`
	Mismatches    int  `json:"mismatches"`
	// EnforcedSeconds is the time from creating the policies to the first
	// probe round that matched (absent when none did).
	EnforcedSeconds float64 `json:"enforcedSeconds,omitempty"`
	Error           string  `json:"error,omitempty"`
	tables          []*pol.Reachability
}

// NetpolReport is the output of `cnilab netpol probe`.
type NetpolReport struct {
	CNI    string             `json:"cni"`
	Kernel string             `json:"kernel"`
	Cases  []NetpolCaseResult `json:"cases"`
}

// NetpolOptions tune RunNetpol.
type NetpolOptions struct {
	Enforcing bool          // the CNI implements NetworkPolicy
	Wait      time.Duration // how long to wait for enforcement per case
	Progress  io.Writer
}

// RunNetpol brings the standard model up once, then for each case applies
// its policies, probes every pair on 80/81 × TCP/UDP/SCTP until the
// observation matches the oracle (or Wait passes), and deletes them.
func RunNetpol(ctx context.Context, cl lab.Cluster, cases []NetpolCase, o NetpolOptions) (NetpolReport, error) {
	rep := NetpolReport{CNI: cl.CNI(), Kernel: cl.KernelRelease()}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	client, err := cl.Client()
	if err != nil {
		return rep, err
	}
	fmt.Fprintln(o.Progress, "creating the standard model (namespaces x, y, z; pods a, b, c)")
	model, err := CreateModel(ctx, client)
	if err != nil {
		return rep, err
	}
	var pps []pol.PortProtocol
	var skipped []string
	for _, pp := range []pol.PortProtocol{pol.TCP80, pol.TCP81, pol.UDP80, pol.UDP81, pol.SCTP80, pol.SCTP81} {
		if pp.Protocol == corev1.ProtocolSCTP && !probe.SCTPSupported() {
			skipped = append(skipped, pp.String())
			continue
		}
		pps = append(pps, pp)
	}
	for _, c := range cases {
		fmt.Fprintf(o.Progress, "case %s: %d policies\n", c.Name, len(c.Policies))
		r := runNetpolCase(ctx, cl, model, c, pps, o)
		r.Skipped = skipped
		rep.Cases = append(rep.Cases, r)
	}
	return rep, nil
}

func runNetpolCase(ctx context.Context, cl lab.Cluster, m pol.Model, c NetpolCase, pps []pol.PortProtocol, o NetpolOptions) NetpolCaseResult {
	res := NetpolCaseResult{Name: c.Name}
	client, _ := cl.Client()
	start := time.Now()
	defer func() {
		for _, np := range c.Policies {
			_ = client.NetworkingV1().NetworkPolicies(np.Namespace).Delete(ctx, np.Name, metav1.DeleteOptions{})
		}
		// Let the deletions take effect before the next case probes.
		settle(ctx, cl, m, pps)
	}()
	for _, np := range c.Policies {
		np := np
		np.ResourceVersion = ""
		if _, err := client.NetworkingV1().NetworkPolicies(np.Namespace).Create(ctx, &np, metav1.CreateOptions{}); err != nil {
			res.Error = fmt.Sprintf("create %s/%s: %v", np.Namespace, np.Name, err)
			return res
		}
	}
	expected := pol.State{Model: m, Policies: c.Policies}
	if !o.Enforcing {
		expected = pol.NewState(m)
	}
	var rs []*pol.Reachability
	for {
		rs = nil
		for _, pp := range pps {
			rs = append(rs, expected.Reachability(pp))
		}
		if err := ProbeMatrix(ctx, cl, m, rs, time.Second); err != nil {
			res.Error = err.Error()
			return res
		}
		res.Mismatches = mismatchCount(rs)
		if res.Mismatches == 0 {
			res.MatchesOracle, res.EnforcedSeconds = true, time.Since(start).Seconds()
			break
		}
		if time.Since(start) > o.Wait || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	res.tables = rs
	for _, r := range rs {
		for _, from := range r.Pods {
			for _, to := range r.Pods {
				res.Probes = append(res.Probes, NetpolProbe{From: from, To: to, Port: r.PortProtocol.Port,
					Protocol: string(r.PortProtocol.Protocol), Connected: r.Observed[pol.Edge{From: from, To: to}]})
			}
		}
	}
	return res
}

// settle waits (bounded) until no policy is observed any more.
func settle(ctx context.Context, cl lab.Cluster, m pol.Model, pps []pol.PortProtocol) {
	open := pol.NewState(m)
	for i := 0; i < 20; i++ {
		var rs []*pol.Reachability
		for _, pp := range pps[:1] {
			rs = append(rs, open.Reachability(pp))
		}
		if ProbeMatrix(ctx, cl, m, rs, time.Second) == nil && mismatchCount(rs) == 0 {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func mismatchCount(rs []*pol.Reachability) int {
	n := 0
	for _, r := range rs {
		n += len(r.Mismatches())
	}
	return n
}

// WriteTables prints each case's observed truth tables (and the diff when
// the observation differs from the oracle).
func (r NetpolReport) WriteTables(w io.Writer) {
	fmt.Fprintf(w, "cni=%s kernel=%s\n", r.CNI, r.Kernel)
	for _, c := range r.Cases {
		verdict := "matches the oracle"
		if !c.MatchesOracle {
			verdict = fmt.Sprintf("DIFFERS from the oracle in %d probes", c.Mismatches)
		}
		fmt.Fprintf(w, "\n== %s: %s", c.Name, verdict)
		if c.EnforcedSeconds > 0 {
			fmt.Fprintf(w, " (enforced after %.1fs)", c.EnforcedSeconds)
		}
		fmt.Fprintln(w)
		if c.Error != "" {
			fmt.Fprintln(w, "error: "+c.Error)
			continue
		}
		fmt.Fprint(w, pol.Compact(c.tables, pol.ObservedTable))
		if !c.MatchesOracle {
			fmt.Fprint(w, pol.Compact(c.tables, pol.DiffTable))
		}
		if len(c.Skipped) > 0 {
			fmt.Fprintf(w, "skipped (kernel lacks the protocol): %s\n", strings.Join(c.Skipped, ", "))
		}
	}
}

func decodeNetpol(doc []byte) (networkingv1.NetworkPolicy, error) {
	var np networkingv1.NetworkPolicy
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return np, err
	}
	if v == nil {
		return np, nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return np, err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	err = dec.Decode(&np)
	return np, err
}
