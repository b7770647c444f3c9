package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// nsenterUsage is the one form the nsenter stand-in supports.
const nsenterUsage = "nsenter --net=FILE -- PROG [ARGS...]"

// parseNsenterArgs parses the arguments (after argv[0]) of the one nsenter
// form the lab uses: --net=FILE, then --, then the program and its
// arguments.
func parseNsenterArgs(args []string) (netns string, argv []string, err error) {
	if len(args) < 3 || args[1] != "--" || args[2] == "" {
		return "", nil, fmt.Errorf("nsenter: unsupported arguments %q: this stand-in supports only `%s`", args, nsenterUsage)
	}
	netns, ok := strings.CutPrefix(args[0], "--net=")
	if !ok || netns == "" {
		return "", nil, fmt.Errorf("nsenter: unsupported arguments %q: this stand-in supports only `%s`", args, nsenterUsage)
	}
	return netns, args[2:], nil
}

// nsenterMain enters the network namespace and executes the program, with
// the environment unchanged. It returns only on failure.
func nsenterMain(args []string) int {
	netns, argv, err := parseNsenterArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := nsenterExec(netns, argv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func nsenterExec(netns string, argv []string) error {
	prog, err := exec.LookPath(argv[0])
	if err != nil && !errors.Is(err, exec.ErrDot) {
		return fmt.Errorf("nsenter: %w", err)
	}
	// setns changes the calling thread only: stay on it until exec, which
	// replaces the whole process with this thread's namespaces.
	runtime.LockOSThread()
	fd, err := unix.Open(netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("nsenter: open %s: %w", netns, err)
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		unix.Close(fd)
		return fmt.Errorf("nsenter: setns %s: %w", netns, err)
	}
	unix.Close(fd)
	if err := syscall.Exec(prog, argv, os.Environ()); err != nil {
		return fmt.Errorf("nsenter: exec %s: %w", prog, err)
	}
	return nil
}
