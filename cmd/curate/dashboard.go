package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/tui"
)

func newDashboardCmd(g *globals) *cobra.Command {
	var (
		plain bool
		watch time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Watch the daemon: members, shard health, heads published, ACKs received",
		Long: `Show, live, the members and their commitments, the replication of the
shards, the heads this curator published and the ACKs it received. q quits
the dashboard; the daemon keeps running.

Without a terminal, or with --plain, the same information prints as text
once, or every --watch interval until interrupted.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(g)
			if err != nil {
				return err
			}
			src := curatorSource(c)
			if plain || watch > 0 || !isTerminal(g.stdout) {
				return tui.Watch(cmd.Context(), g.stdout, "curator", watch, func(ctx context.Context, w io.Writer) error {
					s, err := src(ctx)
					if err != nil {
						return err
					}
					return tui.PrintCurator(w, s, time.Now())
				})
			}
			return tui.RunCurator(cmd.Context(), src, tui.RunOptions{})
		},
	}
	cmd.Flags().BoolVar(&plain, "plain", false, "print text instead of drawing the dashboard")
	cmd.Flags().DurationVar(&watch, "watch", 0, "print the text again every interval (e.g. 5s) until interrupted")
	return cmd
}

// curatorSource fetches the status, the members and the shards.
func curatorSource(c *curator.Client) tui.CuratorSource {
	return func(ctx context.Context) (tui.CuratorSnapshot, error) {
		var snap tui.CuratorSnapshot
		var err error
		if snap.Status, err = c.Status(ctx); err != nil {
			return snap, err
		}
		if snap.Members, err = c.Members(ctx); err != nil {
			return snap, fmt.Errorf("members: %w", err)
		}
		if snap.Shards, err = c.Shards(ctx); err != nil {
			return snap, fmt.Errorf("shards: %w", err)
		}
		return snap, nil
	}
}

// isTerminal reports whether w is a terminal, and so is standard input.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd()) && term.IsTerminal(os.Stdin.Fd())
}
