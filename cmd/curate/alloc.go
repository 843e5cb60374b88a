package main

import "github.com/spf13/cobra"

func newAllocCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "alloc", Short: "Allocation tools (simulate)"}
}
