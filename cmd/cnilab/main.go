// Command cnilab is the command line of cnilab: it brings labs up and down,
// runs commands in their pods, and summarises reports.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "cnilab",
		Short:         "cnilab: an eBPF CNI datapath and the lab that tests it against flannel",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(labCommand(), netpolCommand(), observeCommand(), reportCommand(), versionCommand())
	root.AddCommand(kernelsCommand(), imagesCommand())
	root.AddCommand(installCommand(), statusCommand(), connectivityCommand(), benchCommand(), soakCommand())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cnilab: "+err.Error())
		os.Exit(exitCode(err))
	}
}

// usageError marks errors in how the command was called (exit code 2).
type usageError struct{ error }

func exitCode(err error) int {
	if _, ok := err.(usageError); ok {
		return 2
	}
	return 1
}

// version is stamped by the Makefile.
var version = "dev"

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "cnilab", version) },
	}
}
