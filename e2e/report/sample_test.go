package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sampleSpecs are the suite's specs (names, labels) as a real run recorded
// them, in suite order.
func sampleSpecs(t *testing.T) []Spec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "specs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var specs []Spec
	if err := json.Unmarshal(b, &specs); err != nil {
		t.Fatal(err)
	}
	return specs
}

type sampleKernel struct {
	name, release, provider, attach string
	tcx, redirectPeer, ringBuf      bool
	sctp                            bool
	boot                            float64
}

var sampleKernels = []sampleKernel{
	{"host", "6.18.44-fc-v782", "netns", "tcx", true, true, true, true, 0},
	{"6.1", "6.1.128", "qemu", "tc", false, true, true, false, 7.8},
	{"6.12", "6.12.41", "qemu", "tcx", true, true, true, true, 9.4},
}

// sampleRuns is a matrix of runs as CI would record them: three kernels,
// cnilab and flannel on each, with a few failures, label-filter skips, a
// kernel without SCTP, and one run that never got its lab up.
func sampleRuns(t *testing.T) []Run {
	specs := sampleSpecs(t)
	start := time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)
	var runs []Run
	for ki, k := range sampleKernels {
		for ci, cni := range []string{"cnilab", "flannel"} {
			r := Run{
				Provider: k.provider, CNI: cni, Kernel: k.release, KernelName: k.name,
				Started:      start.Add(time.Duration(ki*2+ci) * 4 * time.Minute),
				SetupSeconds: 11.2 + float64(ki) + float64(ci)/2, BootSeconds: k.boot,
				LogDir: fmt.Sprintf("logs/%s-%s", k.name, cni),
			}
			if k.name == "host" {
				r.LabelFilter = "connectivity || observability || (policy && upstream)"
			}
			if cni == "cnilab" {
				r.Datapath = map[string]any{
					"attachMode": k.attach, "routingMode": "native",
					"features": map[string]any{"tcx": k.tcx, "redirectPeer": k.redirectPeer, "ringBuf": k.ringBuf, "sctp": k.sctp, "kernel": k.release},
				}
				r.PolicyEnforcement = &Quantiles{Samples: 58, P50: 1.1 + float64(ki)/10, P99: 2.9 + float64(ki)/3, Max: 3.4}
			}
			if k.name == "6.12" && cni == "flannel" {
				r.Failure = "BeforeSuite: flanneld on node cnilab-6-12-worker did not report its subnet within 2m0s: open /run/flannel/subnet.env: no such file or directory"
				r.Seconds = 131
				runs = append(runs, r)
				continue
			}
			for _, s := range specs {
				s.Seconds = 0.2 + float64(len(s.Name)%17)/10
				s.State = Passed
				group, sub := groupOf(s)
				switch {
				case r.LabelFilter != "" && group == "policy" && sub != "upstream":
					s.State, s.Reason, s.Seconds = Skipped, "not selected by the label filter", 0
				case cni == "flannel" && (group == "observability" && !strings.Contains(s.Name, "baseline") || strings.Contains(s.Name, "cnilab datapath")):
					s.State, s.Reason = Skipped, "CNI flannel has no cnilab agent: nothing to observe"
				case cni == "cnilab" && strings.Contains(s.Name, "on the baseline"):
					s.State, s.Reason = Skipped, "cnilab is not the baseline; its flows are checked by the Observability specs"
				case !k.sctp && strings.Contains(s.Name, "sctp"):
					s.State, s.Reason = Skipped, "kernel "+k.release+" has no SCTP: sctp module not in the image"
				case k.name == "6.1" && cni == "cnilab" && strings.Contains(s.Name, "agents restart"):
					s.State, s.Reason = Failed, "connection broke while cnilab-agent restarted on cnilab-6-1-worker:\n    read tcp 10.244.0.5:43120->10.244.1.9:8080: read: connection reset by peer"
				case k.name == "6.1" && cni == "cnilab" && (strings.HasSuffix(s.Name, "ingress/all/cidr-except-y-b") || strings.HasSuffix(s.Name, "ingress/pod-a/cidr-except-y-b")):
					s.State, s.Reason = Failed, "probe x/a -> y/b tcp/81: expected DROPPED, got ALLOWED\n(oracle: ingress rule 1 ipBlock 10.244.0.0/16 except 10.244.1.0/24)"
				}
				r.Specs = append(r.Specs, s)
			}
			r.Count()
			r.Seconds = 60 + float64(r.Passed)/2
			runs = append(runs, r)
		}
	}
	return runs
}

// TestRenderSample renders a realistic multi-kernel report end to end. With
// CNILAB_REPORT_SAMPLE=DIR it also leaves the report in DIR, to look at.
func TestRenderSample(t *testing.T) {
	runs := sampleRuns(t)
	dir := t.TempDir()
	if d := os.Getenv("CNILAB_REPORT_SAMPLE"); d != "" {
		dir = d
	}
	// One report directory per kernel, as one CI job per kernel writes.
	for _, r := range runs {
		if err := Append(filepath.Join(dir, "jobs", r.KernelName), r); err != nil {
			t.Fatal(err)
		}
	}
	f, err := Merge(filepath.Join(dir, "jobs"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Runs) != len(runs) {
		t.Fatalf("merged %d runs, want %d", len(f.Runs), len(runs))
	}
	if err := f.Rebase(dir); err != nil {
		t.Fatal(err)
	}
	if got := f.Runs[0].LogDir; got != "jobs/6.1/logs/6.1-cnilab" {
		t.Errorf("rebased log dir %q", got)
	}
	if err := Write(dir, f); err != nil {
		t.Fatal(err)
	}
	md, page := render(t, f.Runs)
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}

	mustContain(t, "report.md", md,
		"## ❌ cnilab kernel compatibility: 3 kernels × 2 CNIs, 6 runs:",
		"| **host** | 6.18.44-fc-v782 | netns | ✅ 74 / 0 / 228 | ✅ 69 / 0 / 233 |",
		"| **6.1** | 6.1.128 | qemu | ❌ 281 / 3 / 18 | ✅ 279 / 0 / 23 |",
		"(1 run did not complete)",
		"| **6.1** 6.1.128 | qemu | cnilab | tc | native | ✗ | ✓ | ✓ | ✗ | 7.8 |",
		"| **6.12** 6.12.41 | qemu | flannel | no datapath report | | — | — | — | — | 9.4 |",
		"### Failures (4)",
		"- ❌ **6.1 · cnilab** connectivity: Connectivity keeps an established TCP connection while the CNI's node agents restart — connection broke",
		"([logs](jobs/6.1/logs/6.1-cnilab/))",
	)
	if t.Failed() {
		t.Log(md)
	}

	// 3 rows for cnilab, 3 for flannel; per row the summary and every
	// column: 21 connectivity + 4 policy families + 6 observability.
	if n := strings.Count(page, `<th class="kern">`); n != 6 {
		t.Errorf("%d kernel rows, want 6", n)
	}
	if n := strings.Count(page, `<tr class="cni">`); n != 2 {
		t.Errorf("%d CNI header rows, want 2", n)
	}
	if n := strings.Count(page, `<th class="rot`); n != 21+4+6 {
		t.Errorf("%d columns, want 31", n)
	}
	mustContain(t, "report.html", page,
		`<th class="grp g-policy" colspan="4"`,
		`generated 170`,
		"<td class=\"fail agg\" title=\"6.1 (6.1.128) · qemu · cnilab\npolicy · generated: 156 passed, 2 failed, 12 skipped of 170\nfailed:\n✗ NetworkPolicy generated/peers/ingress/all/cidr-except-y-b\n✗ NetworkPolicy generated/peers/ingress/pod-a/cidr-except-y-b\">156/158<small>12 skipped</small>",
		`href="jobs/6.1/logs/6.1-cnilab/"`,
		`run failed`,
	)
}
