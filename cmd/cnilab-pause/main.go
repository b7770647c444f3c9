// Command cnilab-pause is the sandbox ("pause") process of a pod on the lab's
// real nodes: containerd starts it as the first process of every pod sandbox,
// and it holds the pod's namespaces (network, IPC, and the PID namespace when
// the pod shares one) open for as long as the pod lives.
//
// It does what the Kubernetes pause container does:
//
//   - it blocks forever, doing nothing;
//   - as PID 1 of the pod it is the reaper of orphaned processes, so on every
//     SIGCHLD it collects every exited child (wait4 with WNOHANG until none is
//     left) and no zombie accumulates;
//   - SIGINT and SIGTERM end it with exit code 0 (the runtime stops a sandbox
//     that way);
//   - "-v" prints its version and exits.
//
// It is written for cnilab and built by `make build` into _output/bin, as a
// static binary (CGO_ENABLED=0) that runs from any image rootfs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	fs := flag.NewFlagSet("cnilab-pause", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	showVersion := fs.Bool("v", false, "print the version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if *showVersion {
		fmt.Printf("cnilab-pause %s\n", version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "cnilab-pause: warning: not the first process of its PID namespace; orphans are reaped only by PID 1")
	}
	os.Exit(pause(os.Stderr))
}

// pause subscribes to SIGCHLD, SIGINT and SIGTERM, reaps the children that
// exited before it listened, and then runs the loop until a stop signal. It
// returns the process exit code.
func pause(logw io.Writer) int {
	// The buffer only has to hold one pending SIGCHLD: signals that arrive
	// while it is full are dropped, but the pending one triggers a reap that
	// collects their children too.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	reapAll()
	return run(sigs, func() { reapAll() }, logw)
}

// run is the sandbox's main loop. It receives signals from sigs: on SIGCHLD
// it calls reap, on SIGINT or SIGTERM it writes one line to logw and returns
// exit code 0; other signals are ignored. It blocks until then (if sigs is
// closed, which never happens in the program, it returns 0 as well).
func run(sigs <-chan os.Signal, reap func(), logw io.Writer) int {
	for sig := range sigs {
		switch sig {
		case syscall.SIGCHLD:
			reap()
		case syscall.SIGINT, syscall.SIGTERM:
			fmt.Fprintf(logw, "cnilab-pause: shutting down, got signal: %v\n", sig)
			return 0
		}
	}
	return 0
}

// reapAll collects every child of this process that has exited, without
// blocking, and returns how many it collected. It returns when no exited
// child is left (wait4 returns 0) or there is no child at all (ECHILD).
func reapAll() int {
	n := 0
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return n
		}
		n++
	}
}
