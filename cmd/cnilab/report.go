package main

import (
	"github.com/spf13/cobra"
)

func reportCommand() *cobra.Command {
	c := &cobra.Command{Use: "report", Short: "Summarise e2e reports"}
	return c
}
