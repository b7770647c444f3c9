package steps

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRunStopsAtTheFirstFailureAndCleansUp(t *testing.T) {
	var ran []string
	step := func(name string, err error) Step {
		return Step{Name: name, Run: func(context.Context) error { ran = append(ran, name); return err }}
	}
	boom := errors.New("boom")
	var out bytes.Buffer
	var cleaned []string
	r := Runner{Progress: &out, Cleanup: func(failed Step, err error) error {
		cleaned = append(cleaned, failed.Name)
		return errors.Join(err, errors.New("cleanup: one namespace left"))
	}}
	err := r.Run(context.Background(), []Step{step("Making A", nil), step("Making B", boom), step("Making C", nil)})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v does not wrap the step's", err)
	}
	if !strings.HasPrefix(err.Error(), "making B: boom") || !strings.Contains(err.Error(), "cleanup: one namespace left") {
		t.Errorf("error %q: want it to name the step and carry the clean-up's word", err)
	}
	if strings.Join(ran, ",") != "Making A,Making B" {
		t.Errorf("ran %v: want A and B only", ran)
	}
	if len(cleaned) != 1 || cleaned[0] != "Making B" {
		t.Errorf("clean-up ran for %v, want once for Making B", cleaned)
	}
	for _, line := range []string{" • Making A ...", " ✓ Making A (", " • Making B ...", " ✗ Making B: boom"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("progress lacks %q:\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "Making C") {
		t.Errorf("progress shows a step after the failure:\n%s", out.String())
	}
}

func TestRunSucceeds(t *testing.T) {
	n := 0
	s := Step{Name: "Counting", Run: func(context.Context) error { n++; return nil }}
	if err := (Runner{}).Run(context.Background(), []Step{s, s}); err != nil || n != 2 {
		t.Errorf("Run = %v after %d steps, want nil after 2", err, n)
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	cleaned := false
	err := Runner{Cleanup: func(_ Step, err error) error { cleaned = true; return err }}.Run(ctx,
		[]Step{{Name: "Waiting", Run: func(context.Context) error { ran = true; return nil }}})
	if !errors.Is(err, context.Canceled) || ran || !cleaned {
		t.Errorf("cancelled: err %v, ran %v, cleaned %v; want context.Canceled, not run, cleaned", err, ran, cleaned)
	}
}
