package main

import (
	"bufio"
	"encoding/json"
	"fmt"

	"github.com/dustin/go-humanize"
	"github.com/dustin/go-humanize/english"
	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/follower"
)

func newPinsCmd(g *globals, name string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "pins",
		Short: "List the pins this follower holds: CID, shard, size, state, name",
		Long: `List the pins of the shards this follower holds, is fetching or keeps until
their new holders proved their copies: CID, shard, size, the shard's state
(stored, fetching, queued, releasing) and name, tab-separated (JSON lines
with --json).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := g.followRoot().Home(name)
			if err != nil {
				return usageError{err}
			}
			c, err := follower.Dial(home)
			if err != nil {
				return err
			}
			bw := bufio.NewWriter(g.stdout)
			defer bw.Flush()
			enc := json.NewEncoder(bw)
			var n int
			var bytes int64
			err = c.Pins(cmd.Context(), func(p follower.HeldPin) error {
				n++
				bytes += max(p.Size, 0)
				if asJSON {
					return enc.Encode(p)
				}
				size := "-"
				if p.Size >= 0 {
					size = ibytes(p.Size)
				}
				_, err := fmt.Fprintf(bw, "%s\t%d\t%s\t%s\t%s\n", p.CID, p.Shard, size, p.State, p.Name)
				return err
			})
			if err != nil {
				return err
			}
			if !asJSON {
				fmt.Fprintf(g.stderr, "%s, %s\n", english.Plural(n, "pin", ""), ibytes(bytes))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines")
	return cmd
}

func ibytes(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }
