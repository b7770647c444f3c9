package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func render(t *testing.T, runs []Run) (md, page string) {
	t.Helper()
	var a, b bytes.Buffer
	if err := RenderMarkdown(&a, runs); err != nil {
		t.Fatal(err)
	}
	if err := RenderHTML(&b, runs); err != nil {
		t.Fatal(err)
	}
	return a.String(), b.String()
}

func mustContain(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

func mustNotContain(t *testing.T, what, out string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(out, w) {
			t.Errorf("%s has %q", what, w)
		}
	}
}

func TestRenderEscapes(t *testing.T) {
	name := `Connectivity <b>bold</b> & "quoted" | *starred* [x]`
	r := Run{Provider: "netns", CNI: "cni<&>", Kernel: "6.18", KernelName: "host", LogDir: `logs/a b&"c`, Specs: []Spec{
		{Name: name, Labels: []string{"connectivity"}, State: Failed, Reason: "got <script>alert(\"x\")</script>\n& more"},
		{Name: "Connectivity plain", Labels: []string{"connectivity"}, State: Passed},
	}}
	r.Count()
	md, page := render(t, []Run{r})

	mustNotContain(t, "report.html", page, "<b>bold</b>", "<script>", "cni<&>")
	mustContain(t, "report.html", page,
		`&lt;b&gt;bold&lt;/b&gt; &amp; &#34;quoted&#34; | *starred* [x]`,
		`got &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more`,
		`cni&lt;&amp;&gt;`,
		`href="logs/a%20b&amp;%22c/"`,
	)
	mustNotContain(t, "report.md", md, "<b>", "<script>")
	mustContain(t, "report.md", md,
		`&lt;b&gt;bold&lt;/b&gt; &amp; "quoted" \| \*starred\* \[x\]`,
		`got &lt;script&gt;alert("x")&lt;/script&gt; &amp; more`,
		`| cni&lt;&amp;&gt; |`,
		`([logs](logs/a%20b&%22c/))`,
	)
}

func policyRun(cni string, failing ...string) Run {
	r := Run{Provider: "qemu", CNI: cni, Kernel: "6.12.41", KernelName: "6.12", LogDir: "logs/" + cni}
	for i := range 3 {
		r.Specs = append(r.Specs, Spec{Name: fmt.Sprintf("Connectivity check %d", i), Labels: []string{"connectivity"}, State: Passed})
	}
	for i := range 275 {
		s := Spec{Name: fmt.Sprintf("NetworkPolicy spec %03d", i), Labels: []string{"policy"}, State: Passed}
		for _, f := range failing {
			if f == s.Name {
				s.State, s.Reason = Failed, "expected DROPPED, got ALLOWED"
			}
		}
		r.Specs = append(r.Specs, s)
	}
	r.Count()
	return r
}

func TestCollapsedGroup(t *testing.T) {
	bad := "NetworkPolicy spec 137"
	md, page := render(t, []Run{policyRun("cnilab", bad), policyRun("flannel")})

	// 3 connectivity columns and one for the 275 policy checks.
	if n := strings.Count(page, `<th class="rot`); n != 4 {
		t.Errorf("%d columns, want 4", n)
	}
	mustContain(t, "report.html", page,
		`<th class="grp g-policy" colspan="1" title="policy: 275 checks, collapsed">`,
		`<div>all 275</div>`,
		"<td class=\"fail first agg\" title=\"6.12 (6.12.41) · qemu · cnilab\npolicy: 274 passed, 1 failed, 0 skipped of 275\nfailed:\n✗ NetworkPolicy spec 137\">274/275</td>",
		`<td class="pass first agg" title="6.12 (6.12.41) · qemu · flannel`, `>275/275</td>`,
		`<b>NetworkPolicy spec 137</b> · <a href="logs/cnilab/">logs</a>`,
		`<h2>Failures (1)</h2>`,
	)
	if n := strings.Count(page, `<td class="pass first"`); n != 2 {
		t.Errorf("%d first connectivity cells, want 2", n)
	}
	mustContain(t, "report.md", md,
		"## ❌ cnilab kernel compatibility: 1 kernel × 2 CNIs, 2 runs: 555 passed, 1 failed, 0 skipped\n",
		"| **6.12** | 6.12.41 | qemu | ❌ 277 / 1 / 0 | ✅ 278 / 0 / 0 |",
		"### Failures (1)\n\n- ❌ **6.12 · cnilab** policy: NetworkPolicy spec 137 — expected DROPPED, got ALLOWED ([logs](logs/cnilab/))\n",
	)
}

func TestSubfamilies(t *testing.T) {
	r := Run{Provider: "netns", CNI: "cnilab", KernelName: "host", Kernel: "6.18"}
	for i := range 60 {
		fam := []string{"upstream", "generated", "update"}[i%3]
		st := Passed
		if i == 4 {
			st = Skipped
		}
		r.Specs = append(r.Specs, Spec{Name: fmt.Sprintf("NetworkPolicy %s/%d", fam, i), Labels: []string{"policy", fam, "tcp"}, State: st})
	}
	r.Count()
	_, page := render(t, []Run{r})
	mustContain(t, "report.html", page, `<div>upstream 20</div>`, `<div>generated 20</div>`, `<div>update 20</div>`,
		`<td class="part agg"`, `>19/19<small>1 skipped</small></td>`)
}

func TestKernelRows(t *testing.T) {
	var runs []Run
	for _, k := range []struct{ name, rel, prov string }{
		{"6.12", "6.12.41", "qemu"}, {"", "6.18.4", "netns"}, {"6.1", "6.1.128", "qemu"}, {"", "5.15.160-cnilab", "qemu"},
	} {
		runs = append(runs, Run{Provider: k.prov, CNI: "cnilab", KernelName: k.name, Kernel: k.rel,
			Specs: []Spec{{Name: "Connectivity a", Labels: []string{"connectivity"}, State: Passed}}})
	}
	m := buildMatrix(runs)
	var got []string
	for _, k := range m.Kernels {
		got = append(got, k.Name+"/"+k.Release+"/"+k.Provider)
	}
	want := "host/6.18.4/netns 5.15/5.15.160-cnilab/qemu 6.1/6.1.128/qemu 6.12/6.12.41/qemu"
	if strings.Join(got, " ") != want {
		t.Fatalf("rows %v, want %s", got, want)
	}
}

func TestMergedRunsWorstWins(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := Run{Provider: "netns", CNI: "cnilab", Kernel: "6.18", Started: at, Datapath: map[string]any{"attachMode": "tcx"},
		Specs: []Spec{{Name: "Connectivity x", Labels: []string{"connectivity"}, State: Passed}, {Name: "Connectivity y", Labels: []string{"connectivity"}, State: Passed}}}
	b := Run{Provider: "netns", CNI: "cnilab", Kernel: "6.18", Started: at.Add(time.Minute), Datapath: map[string]any{"attachMode": "tc"},
		Specs: []Spec{{Name: "Connectivity x", Labels: []string{"connectivity"}, State: Failed, Reason: "timeout"}, {Name: "Connectivity y", Labels: []string{"connectivity"}, State: Skipped}}}
	md, page := render(t, []Run{a, b})
	mustContain(t, "report.md", md, "| **host** | 6.18 | netns | ❌ 1 / 1 / 0 (2 runs) |", `\[attach tc, 03:05:05\] timeout`)
	mustContain(t, "report.html", page, `<span class="mode">tcx, tc</span>`, "FAILED: [attach tc, 03:05:05] timeout")
}

func TestRunFailureAndEmpty(t *testing.T) {
	md, page := render(t, []Run{{Provider: "qemu", CNI: "flannel", KernelName: "6.1", Kernel: "6.1.128", Failure: "BeforeSuite: no <lab>"}})
	mustContain(t, "report.md", md, "❌ 0 / 0 / 0 (1 run did not complete)", "run did not complete — BeforeSuite: no &lt;lab&gt;")
	mustContain(t, "report.html", page, ">run failed</td>", "BeforeSuite: no &lt;lab&gt;")

	md, page = render(t, nil)
	mustContain(t, "report.md", md, "0 kernels × 0 CNIs, 0 runs", "No runs in the report.")
	mustContain(t, "report.html", page, "No runs in the report.", "</html>")
}

func TestRunJSONCompatible(t *testing.T) {
	old := `{"runs":[{"provider":"netns","cni":"flannel","kernel":"6.18","started":"2026-11-26T23:25:18Z","seconds":82.3,"passed":1,"failed":0,"skipped":0,"specs":[{"name":"a","labels":["connectivity"],"state":"passed","seconds":1}]}]}`
	var f File
	if err := json.Unmarshal([]byte(old), &f); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(f.Runs[0])
	mustNotContain(t, "run json", string(b), "kernelName", "bootSeconds", "logDir")
	b, _ = json.Marshal(Run{KernelName: "6.1", BootSeconds: 7.5, LogDir: "logs/x"})
	mustContain(t, "run json", string(b), `"kernelName":"6.1"`, `"bootSeconds":7.5`, `"logDir":"logs/x"`)
}

func TestMerge(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "jobs", "a"), filepath.Join(root, "jobs", "b")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r1 := Run{Provider: "qemu", CNI: "cnilab", KernelName: "6.1", Started: at, LogDir: "logs/one"}
	r2 := Run{Provider: "qemu", CNI: "flannel", KernelName: "6.1", Started: at.Add(time.Minute), LogDir: "/abs/logs"}
	r3 := Run{Provider: "qemu", CNI: "cnilab", KernelName: "6.12", Started: at}
	for _, x := range []struct {
		dir string
		r   Run
	}{{a, r1}, {a, r2}, {b, r3}} {
		if err := Append(x.dir, x.r); err != nil {
			t.Fatal(err)
		}
	}
	// The parent (walked), a dir again, and a report.json file: each run once.
	f, err := Merge(filepath.Join(root, "jobs"), a, filepath.Join(b, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Runs) != 3 {
		t.Fatalf("%d runs, want 3", len(f.Runs))
	}
	if f.Runs[0].LogDir != filepath.Join(a, "logs", "one") || f.Runs[1].LogDir != "/abs/logs" {
		t.Fatalf("log dirs %q %q", f.Runs[0].LogDir, f.Runs[1].LogDir)
	}
	out := filepath.Join(root, "out")
	if err := f.Rebase(out); err != nil {
		t.Fatal(err)
	}
	if f.Runs[0].LogDir != "../jobs/a/logs/one" {
		t.Fatalf("rebased %q", f.Runs[0].LogDir)
	}
	if err := Write(out, f); err != nil {
		t.Fatal(err)
	}
	g, err := Load(out)
	if err != nil || len(g.Runs) != 3 || g.Runs[0].KernelName != "6.1" {
		t.Fatalf("written report: %v %+v", err, g)
	}

	if _, err := Merge(filepath.Join(root, "missing")); err == nil {
		t.Error("merged a missing input")
	}
	empty := filepath.Join(root, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(empty); err == nil || !strings.Contains(err.Error(), "no report.json") {
		t.Errorf("merged a directory without reports: %v", err)
	}
}
