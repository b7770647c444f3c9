package cni

import (
	"context"
	"fmt"
	"os"

	"github.com/cnilab/cnilab/lab/internal/atomicfile"
	"github.com/cnilab/cnilab/lab/internal/netns"
	"github.com/cnilab/cnilab/lab/internal/proc"
)

// NodeHost is how an installer reaches a node: its files and its processes.
// Paths are the node's own (a directory of the host for a netns node, the
// guest's file system for a VM).
type NodeHost interface {
	WriteFile(ctx context.Context, path string, data []byte, mode os.FileMode) error
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// Start starts a named daemon on the node with env added to its
	// environment.
	Start(ctx context.Context, name string, argv, env []string) error
}

// LocalHost is a node that is a network namespace of this machine.
type LocalHost struct {
	Lab    string
	Netns  string
	LogDir string
	PidDir string
}

// WriteFile implements NodeHost, atomically.
func (h LocalHost) WriteFile(_ context.Context, path string, data []byte, mode os.FileMode) error {
	return atomicfile.WriteFile(path, data, mode)
}

// ReadFile implements NodeHost.
func (h LocalHost) ReadFile(_ context.Context, path string) ([]byte, error) { return os.ReadFile(path) }

// Start implements NodeHost: the daemon runs in the node's namespace, tagged
// as the lab's, with its log in LogDir.
func (h LocalHost) Start(_ context.Context, name string, argv, env []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("start %s: no command", name)
	}
	cmd, err := netns.Command(h.Netns, argv[0], argv[1:]...)
	if err != nil {
		return err
	}
	cmd.Env = append(os.Environ(), env...)
	_, err = proc.Start(proc.Spec{Lab: h.Lab, Name: name, Cmd: cmd, LogDir: h.LogDir, PidDir: h.PidDir})
	return err
}
