package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/curator"
)

func newAddCmd(g *globals) *cobra.Command {
	var perEntry bool
	var name string
	cmd := &cobra.Command{
		Use:   "add <file-or-folder>",
		Short: "Import content as UnixFS into the curator's store and pin it",
		Long: `Import a file or a folder as UnixFS into the running daemon's block store
(the curator then serves it to followers over bitswap) and pin it with its
size. With --each, every direct entry of a folder becomes a pin of its own,
so a large folder spreads over many shards.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(g)
			if err != nil {
				return err
			}
			// The daemon reads the path: make it absolute here, where the
			// user typed it relative to their own folder.
			path, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			res, err := c.AddContent(cmd.Context(), curator.AddRequest{Path: path, Each: perEntry, Name: name})
			if err != nil {
				return err
			}
			for _, p := range res {
				fmt.Fprintf(g.stdout, "pinned %s\t%s\t%s\n", p.CID, ibytes(p.Size), p.Name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&perEntry, "each", false, "pin every direct entry of the folder separately")
	cmd.Flags().StringVar(&name, "name", "", "name of the pin (default: the file or folder name)")
	return cmd
}
