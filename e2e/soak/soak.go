// Package soak brings labs up and down many times and checks after every
// cycle that nothing of them is left on the machine: network namespaces,
// host links, mounts, bpffs pins, processes and state files. It also kills
// `make e2e` runs with SIGKILL at random moments and checks that `cnilab
// lab down --all` leaves nothing behind.
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cnilab/cnilab/e2e"
	"github.com/cnilab/cnilab/lab"
)

// Options says what a soak does.
type Options struct {
	Provider lab.Provider
	// CNIs to cycle (default cnilab and flannel).
	CNIs []string
	// Cycles of lab up, pods, lab down per CNI (default 100).
	Cycles int
	// Pods created and awaited in every cycle (default 6).
	Pods int
	// Kills is how many runs of KillCommand are SIGKILLed at a random
	// moment between KillAfter and 2×KillAfter, each followed by DownAll.
	Kills       int
	KillCommand []string
	KillAfter   time.Duration
	// DownAll removes every lab, as `cnilab lab down --all` does.
	DownAll func() error
	// NodeKind of the cycled labs (light or real; empty: the provider's
	// default).
	NodeKind string
	// Name of the soak's lab (default "soak").
	Name     string
	Progress io.Writer
}

// Result is what a soak found.
type Result struct {
	Cycles int `json:"cycles"`
	// Seconds of every cycle, in order.
	Seconds []float64 `json:"seconds"`
	Kills   int       `json:"kills"`
	// KilledAfter are the moments the runs were killed, in seconds.
	KilledAfter []float64 `json:"killedAfter"`
	// Leaks are what a cycle or a kill left behind, with which one.
	Leaks []string `json:"leaks"`
	// Failures are cycles whose lab did not come up or down.
	Failures []string `json:"failures"`
}

func (o *Options) defaults() error {
	if o.Provider == nil {
		return errors.New("soak: no lab provider")
	}
	if len(o.CNIs) == 0 {
		o.CNIs = []string{"cnilab", "flannel"}
	}
	if o.Cycles < 0 || o.Kills < 0 || o.Pods < 0 {
		return errors.New("soak: cycles, kills and pods must not be negative")
	}
	if o.Cycles == 0 && o.Kills == 0 {
		o.Cycles = 100
	}
	if o.Pods == 0 {
		o.Pods = 6
	}
	if o.Kills > 0 && (len(o.KillCommand) == 0 || o.DownAll == nil) {
		return errors.New("soak: kills need a command to kill and a way to remove every lab")
	}
	if o.KillAfter <= 0 {
		o.KillAfter = 30 * time.Second
	}
	if o.Name == "" {
		o.Name = "soak"
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

// Run soaks. It stops early only when ctx ends.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	res := &Result{}
	links, err := lab.HostLinks()
	if err != nil {
		return nil, err
	}
	for c := range o.Cycles {
		for _, cni := range o.CNIs {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			start := time.Now()
			err := o.cycle(ctx, cni)
			secs := time.Since(start).Seconds()
			res.Cycles++
			res.Seconds = append(res.Seconds, secs)
			what := fmt.Sprintf("cycle %d %s", c+1, cni)
			if err != nil {
				res.Failures = append(res.Failures, what+": "+err.Error())
				_ = o.Provider.Delete(o.Name)
			}
			leaks, lerr := lab.Leaks(o.Name, links)
			if lerr != nil {
				return res, lerr
			}
			for _, l := range leaks {
				res.Leaks = append(res.Leaks, what+": "+l)
			}
			status := "ok"
			if err != nil {
				status = "FAILED: " + err.Error()
			}
			fmt.Fprintf(o.Progress, "soak: %s %.1fs, %d leaks, %s\n", what, secs, len(leaks), status)
		}
	}
	for k := range o.Kills {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		after := o.KillAfter + time.Duration(rand.Int64N(int64(o.KillAfter)))
		err := o.kill(ctx, after)
		res.Kills++
		res.KilledAfter = append(res.KilledAfter, after.Seconds())
		what := fmt.Sprintf("kill %d after %.0fs", k+1, after.Seconds())
		if err != nil {
			res.Failures = append(res.Failures, what+": "+err.Error())
		}
		leaks, lerr := lab.Leaks("", links)
		if lerr != nil {
			return res, lerr
		}
		for _, l := range leaks {
			res.Leaks = append(res.Leaks, what+": "+l)
		}
		fmt.Fprintf(o.Progress, "soak: %s, %d leaks\n", what, len(leaks))
	}
	return res, nil
}

// cycle brings a lab up, runs Pods pods in it, and removes it.
func (o *Options) cycle(ctx context.Context, cni string) error {
	opts := []lab.Option{lab.WithName(o.Name), lab.WithCNI(cni), lab.WithNodes(2)}
	if o.NodeKind != "" {
		opts = append(opts, lab.WithNodeKind(o.NodeKind))
	}
	cl, err := o.Provider.Create(ctx, opts...)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	err = runPods(ctx, cl, o.Pods)
	if derr := o.Provider.Delete(o.Name); derr != nil {
		return errors.Join(err, fmt.Errorf("down: %w", derr))
	}
	return err
}

// runPods creates n probe pods spread over the nodes and waits until all
// are running with an address.
func runPods(ctx context.Context, cl lab.Cluster, n int) error {
	c, err := cl.Client()
	if err != nil {
		return err
	}
	const ns = "soak"
	if err := e2e.CreateNamespace(ctx, c, ns, nil); err != nil {
		return err
	}
	nodes := cl.Nodes()
	var names []string
	for i := range n {
		name := fmt.Sprintf("pod-%d", i)
		p := e2e.ProbePod(ns, e2e.PodSpec{Name: name, Node: nodes[i%len(nodes)].Name, Ports: e2e.Ports(80)})
		if _, err := c.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create pod %s: %w", name, err)
		}
		names = append(names, name)
	}
	pods, err := e2e.WaitRunning(ctx, c, ns, names, 2*time.Minute)
	if err != nil {
		return err
	}
	ips := map[string]bool{}
	for _, p := range pods {
		ips[podIP(p)] = true
	}
	if len(ips) != n {
		return fmt.Errorf("%d pods share %d addresses", n, len(ips))
	}
	return nil
}

func podIP(p *corev1.Pod) string { return p.Status.PodIP }

// kill starts the kill command in its own process group, SIGKILLs the
// command itself (not its children: they are what `lab down --all` must
// find) after the given time, and removes every lab.
func (o *Options) kill(ctx context.Context, after time.Duration) error {
	cmd := exec.CommandContext(ctx, o.KillCommand[0], o.KillCommand[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.Env = slices.Clone(os.Environ())
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %v: %w", o.KillCommand, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		fmt.Fprintf(o.Progress, "soak: %v ended by itself before the kill (%v)\n", o.KillCommand, err)
	case <-time.After(after):
		// What the run had made when it was killed: a kill before any lab
		// existed would test nothing.
		if up, err := lab.Leaks("", nil); err == nil {
			fmt.Fprintf(o.Progress, "soak: killing %v after %.0fs with %d lab objects up (namespaces, processes, mounts, state)\n", o.KillCommand, after.Seconds(), len(up))
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	if err := o.DownAll(); err != nil {
		return fmt.Errorf("lab down --all: %w", err)
	}
	return nil
}
