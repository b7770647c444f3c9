// Package steps runs a lab's creation as a list of named steps, the one way
// every provider (netns, qemu, kind) brings a cluster up: each step is shown
// as it starts (" • name ...") and ends (" ✓ name (1.2s)"); the first that
// fails is shown (" ✗ name: error"), the runner's clean-up removes whatever
// was made so far, and the error names the step.
package steps

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// Step is one stage of a creation.
type Step struct {
	Name string
	Run  func(context.Context) error
}

// Runner runs steps.
type Runner struct {
	// Progress receives the progress lines; nil discards them.
	Progress io.Writer
	// Cleanup runs once after a step failed, with that step's error, to
	// remove what was made (and keep what must be read, such as logs). It
	// returns the error to report: err itself, or err with more said.
	Cleanup func(failed Step, err error) error
}

// Run runs the steps in order and stops at the first error, which it returns
// as "step name: error" after the clean-up.
func (r Runner) Run(ctx context.Context, steps []Step) error {
	w := r.Progress
	if w == nil {
		w = io.Discard
	}
	for _, s := range steps {
		t := time.Now()
		fmt.Fprintf(w, " • %s ...\n", s.Name)
		err := ctx.Err()
		if err == nil {
			err = s.Run(ctx)
		}
		if err != nil {
			fmt.Fprintf(w, " ✗ %s: %v\n", s.Name, err)
			if r.Cleanup != nil {
				err = r.Cleanup(s, err)
			}
			return fmt.Errorf("%s: %w", Lower(s.Name), err)
		}
		fmt.Fprintf(w, " ✓ %s (%.1fs)\n", s.Name, time.Since(t).Seconds())
	}
	return nil
}

// Lower lower-cases a step name's first letter, for use inside a sentence.
func Lower(name string) string {
	if name == "" {
		return name
	}
	return strings.ToLower(name[:1]) + name[1:]
}
