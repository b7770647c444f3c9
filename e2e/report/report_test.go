package report

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

func TestAppendKeepsEveryRun(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Append(dir, Run{Provider: "netns", CNI: "flannel"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Runs) != 8 {
		t.Fatalf("%d runs in report, want 8", len(f.Runs))
	}
}

func TestSummaryNamesFailures(t *testing.T) {
	r := Run{Provider: "netns", CNI: "flannel", Kernel: "6.18", Specs: []Spec{
		{Name: "pod to pod TCP", Labels: []string{"connectivity"}, State: Passed},
		{Name: "pod to pod UDP", Labels: []string{"connectivity"}, State: Failed, Reason: "no reply\nfrom udp"},
		{Name: "policy", Labels: []string{"policy"}, State: Skipped},
	}}
	r.Count()
	var b bytes.Buffer
	Summary(&b, r)
	out := b.String()
	for _, want := range []string{"FAIL", "1 passed, 1 failed, 1 skipped", "✗ pod to pod UDP", "no reply from udp", "connectivity     1 passed   1 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestSummarise(t *testing.T) {
	if Summarise(nil) != nil {
		t.Fatal("empty sample has quantiles")
	}
	var xs []float64
	for i := 100; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	q := Summarise(xs)
	if q.Samples != 100 || q.P50 != 50 || q.P99 != 99 || q.Max != 100 {
		t.Fatalf("%+v", q)
	}
}
