package bench

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/cnilab/cnilab/lab"
)

// fakeProvider stands in where only the presence of a provider matters.
type fakeProvider struct{ lab.Provider }

func sample() *Report {
	return &Report{Kernel: "6.18.0", Repetitions: 3, Warmup: "500ms", Duration: "2s", CPUs: 2, Rows: []Row{
		{Test: "TCP_RR", Placement: SameNode, Variant: VariantLimit, Median: 40000, Unit: "trans/s", Runs: []float64{40000, 39000, 41000}, P50US: 24, P99US: 60},
		{Test: "TCP_RR", Placement: SameNode, Variant: VariantCnilab, Median: 38000, Unit: "trans/s", Runs: []float64{38000, 37000, 39000}, P50US: 25, P99US: 70},
		{Test: "TCP_RR", Placement: SameNode, Variant: VariantFlannel, Median: 30000, Unit: "trans/s", Runs: []float64{30000, 30000, 30000}, P50US: 32, P99US: 90},
		{Test: "TCP_STREAM", Placement: CrossNode, Variant: VariantLimit, Median: 20, Unit: "Gbit/s", Runs: []float64{20}},
		{Test: "TCP_STREAM", Placement: CrossNode, Variant: VariantCnilabVXLAN, Median: 8, Unit: "Gbit/s", Runs: []float64{8}},
		{Test: "TCP_STREAM", Placement: CrossNode, Variant: VariantFlannel, Median: 10, Unit: "Gbit/s", Runs: []float64{10}},
		{Test: "UDP_RR", Placement: CrossNode, Variant: VariantCnilab, Unit: "trans/s", Errors: []string{"no UDP reply"}},
	}}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		in := append([]float64(nil), tc.in...)
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Errorf("Median reordered its input: %v", tc.in)
			}
		}
	}
}

func TestRatioAndBehind(t *testing.T) {
	r := sample()
	if x, ok := Ratio(r.Rows, "TCP_RR", SameNode, VariantCnilab, VariantLimit); !ok || x != 0.95 {
		t.Errorf("cnilab/limit = %v, %v; want 0.95", x, ok)
	}
	if _, ok := Ratio(r.Rows, "UDP_RR", CrossNode, VariantCnilab, VariantFlannel); ok {
		t.Error("a ratio for a row without runs")
	}
	behind := Behind(r.Rows)
	if len(behind) != 1 || !strings.HasPrefix(behind[0], "cnilab-vxlan TCP_STREAM cross-node: 0.80× flannel (8.00 vs 10.0 Gbit/s)") {
		t.Errorf("Behind = %q", behind)
	}
}

func TestRenderMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := RenderMarkdown(&b, sample()); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| TCP_RR | same-node | trans/s | 40000 | 38000 | – | 30000 | 1.27 | 0.95 | – | – |",
		"| TCP_STREAM | cross-node | Gbit/s | 20.0 | – | 8.00 | 10.0 | – | – | **0.80** | 0.40 |",
		"| UDP_RR | cross-node | trans/s | – | failed | – | – |",
		"| TCP_RR | same-node | 24.0 / 60.0 | 25.0 / 70.0 | – | 32.0 / 90.0 |",
		"**Where cnilab is behind flannel:**",
		"- cnilab UDP_RR cross-node: no UDP reply",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestRenderSVG checks the plot is well-formed XML with one bar per row
// that has runs, each titled with its value.
func TestRenderSVG(t *testing.T) {
	var b bytes.Buffer
	if err := RenderSVG(&b, sample()); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&b)
	bars := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "title" {
			bars++
		}
	}
	if bars != 6 {
		t.Errorf("%d bars with a title, want 6", bars)
	}
}

func TestScalePolicyIsValid(t *testing.T) {
	seen := map[string]bool{}
	for _, i := range []int{0, 1, 255, 256, 999, 4095} {
		p := ScalePolicy(i)
		if seen[p.Name] || p.Spec.PodSelector.MatchLabels["app"] != "bench-server" {
			t.Errorf("policy %d: %s %v", i, p.Name, p.Spec.PodSelector)
		}
		seen[p.Name] = true
		cidr := p.Spec.Ingress[1].From[0].IPBlock.CIDR
		if !strings.HasPrefix(cidr, "172.") || !strings.HasSuffix(cidr, ".0/24") {
			t.Errorf("policy %d: ipBlock %s", i, cidr)
		}
		if p.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress {
			t.Errorf("policy %d: types %v", i, p.Spec.PolicyTypes)
		}
	}
	if ScalePolicy(1).Spec.Ingress[1].From[0].IPBlock.CIDR == ScalePolicy(257).Spec.Ingress[1].From[0].IPBlock.CIDR {
		t.Error("policies 1 and 257 share an ipBlock")
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}
	if err := o.defaults(); err == nil {
		t.Error("no provider accepted")
	}
	o = Options{Provider: fakeProvider{}, Variants: []string{"calico"}}
	if err := o.defaults(); err == nil || !strings.Contains(err.Error(), `unknown variant "calico"`) {
		t.Errorf("unknown variant: %v", err)
	}
	o = Options{Provider: fakeProvider{}, PolicyCounts: []int{-1}}
	if err := o.defaults(); err == nil {
		t.Error("negative policy count accepted")
	}
	o = Options{Provider: fakeProvider{}}
	if err := o.defaults(); err != nil || o.Repetitions != 5 || len(o.Variants) != 4 || len(o.Tests) != 4 || o.labName(VariantCnilabVXLAN) != "bench-vxlan" {
		t.Errorf("defaults: %v %+v", err, o)
	}
	if got := sortedUnique([]int{1000, 0, 100, 0}); len(got) != 3 || got[0] != 0 || got[2] != 1000 {
		t.Errorf("sortedUnique = %v", got)
	}
	if compiledPolicies(map[string]any{"policy": map[string]any{"policies": 7.0}}) != 7 || compiledPolicies(map[string]any{"policies": 3.0}) != 3 {
		t.Error("compiledPolicies does not read both status shapes")
	}
}

func TestBaseline(t *testing.T) {
	o := Options{Provider: fakeProvider{}, Baseline: t.TempDir()}
	if err := o.defaults(); err == nil || !strings.Contains(err.Error(), "has no executable cnilab-agent") {
		t.Errorf("a baseline without binaries: %v", err)
	}
	dir := t.TempDir()
	for _, b := range []string{"cnilab-agent", "cnilab-cni"} {
		if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	o = Options{Provider: fakeProvider{}, Baseline: dir, Variants: []string{VariantFlannel}}
	if err := o.defaults(); err == nil || !strings.Contains(err.Error(), "needs the cnilab or cnilab-vxlan variant") {
		t.Errorf("a baseline without a cnilab variant: %v", err)
	}
	o = Options{Provider: fakeProvider{}, Baseline: dir, Variants: []string{VariantCnilab, VariantFlannel}}
	if err := o.defaults(); err != nil || !slices.Equal(o.Variants, []string{VariantCnilab, VariantFlannel, VariantCnilabBase}) || o.labName(VariantCnilabBase) != "bench-cnilab-base" {
		t.Errorf("baseline variants: %v %v", err, o.Variants)
	}
	rows := []Row{
		{Test: "TCP_RR", Placement: SameNode, Variant: VariantCnilab, Median: 100, Runs: []float64{90, 100, 110}},
		{Test: "TCP_RR", Placement: SameNode, Variant: VariantCnilabBase, Median: 105, Runs: []float64{95, 105, 115}},
		{Test: "UDP_RR", Placement: CrossNode, Variant: VariantCnilab, Median: 70, Runs: []float64{68, 70, 72}},
		{Test: "UDP_RR", Placement: CrossNode, Variant: VariantCnilabBase, Median: 100, Runs: []float64{95, 100, 105}},
		{Test: "TCP_STREAM", Placement: CrossNode, Variant: VariantCnilabVXLAN, Median: 12, Runs: []float64{11, 12, 13}},
		{Test: "TCP_STREAM", Placement: CrossNode, Variant: VariantCnilabVXLANBase, Median: 10, Runs: []float64{10, 10, 10}},
		{Test: "TCP_CRR", Placement: CrossNode, Variant: VariantCnilab, Median: 10, Runs: []float64{10}},
	}
	got := CompareBaseline(rows)
	want := []string{"TCP_RR/same-node/within noise", "UDP_RR/cross-node/falls", "TCP_STREAM/cross-node/rises"}
	if len(got) != len(want) {
		t.Fatalf("CompareBaseline = %+v", got)
	}
	for i, c := range got {
		if c.Test+"/"+c.Placement+"/"+c.Verdict != want[i] {
			t.Errorf("row %d: %+v, want %s", i, c, want[i])
		}
	}
	if got[1].Ratio != 0.7 || got[1].BaseSpread != 0.1 {
		t.Errorf("UDP_RR ratio %v spread %v, want 0.7 and 0.1", got[1].Ratio, got[1].BaseSpread)
	}
	var md bytes.Buffer
	if err := RenderMarkdown(&md, &Report{Baseline: dir, Rows: rows}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"This build over the baseline (" + dir + ")", "| cnilab | UDP_RR | cross-node | 0.70 | ±3% | ±5% | **falls** |", "| cnilab@base |"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("bench.md lacks %q:\n%s", s, md.String())
		}
	}
}
