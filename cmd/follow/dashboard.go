package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/tui"
)

func newDashboardCmd(g *globals, name string) *cobra.Command {
	var (
		plain bool
		watch time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Watch the running follower: head, storage, commitments, events",
		Long: `Attach to the running follower of cluster ` + name + ` and show, live, its head,
storage, the shards it committed to and its recent events. q quits the
dashboard; the follower keeps running.

Without a terminal, or with --plain, the same information prints as text
once, or every --watch interval until interrupted.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := g.followRoot().Home(name)
			if err != nil {
				return usageError{err}
			}
			src := attachedSource(home)
			if plain || watch > 0 || !isTerminal(g.stdout) {
				return tui.Watch(cmd.Context(), g.stdout, "follower", watch, func(ctx context.Context, w io.Writer) error {
					s, err := src(ctx)
					if err != nil {
						return err
					}
					return tui.PrintFollower(w, s, time.Now())
				})
			}
			return tui.RunFollower(cmd.Context(), src, tui.RunOptions{})
		},
	}
	cmd.Flags().BoolVar(&plain, "plain", false, "print text instead of drawing the dashboard")
	cmd.Flags().DurationVar(&watch, "watch", 0, "print the text again every interval (e.g. 5s) until interrupted")
	return cmd
}

// attachedSource reads the status of the follower running in home. It
// dials again on every fetch, so that a restarted follower (new API
// address) is found.
func attachedSource(home follower.Home) tui.FollowerSource {
	return func(ctx context.Context) (follower.Status, error) {
		c, err := follower.Dial(home)
		if err != nil {
			return follower.Status{}, err
		}
		return c.Status(ctx)
	}
}

// isTerminal reports whether w is a terminal, and so is standard input.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd()) && term.IsTerminal(os.Stdin.Fd())
}

// runWithDashboard runs the follower d in this process with the dashboard
// on the terminal: quitting the dashboard stops the follower (it cannot
// outlive the process), as Ctrl-C does without --dashboard.
func runWithDashboard(ctx context.Context, g *globals, name, logPath string, d *follower.Daemon) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { // exits when ctx ends or the follower fails
		done <- d.Run(ctx)
		cancel() // a failed follower closes the dashboard
	}()
	src := func(context.Context) (follower.Status, error) { return d.Status(), nil }
	err := tui.RunFollower(ctx, src, tui.RunOptions{Options: tui.Options{
		QuitNote: "stops the follower",
		Help:     "This follower runs in this process: quitting the dashboard stops it. Logs: " + logPath + ".",
	}})
	cancel()
	runErr := <-done
	if err != nil {
		return err
	}
	if runErr == nil || errors.Is(runErr, context.Canceled) {
		_, _ = io.WriteString(g.stdout, "follower of "+name+" stopped\n")
		return nil
	}
	return runErr
}

// wantDashboard reports whether run --dashboard can draw: without a
// terminal the follower runs as without the flag, and says so.
func wantDashboard(g *globals, flag bool) bool {
	if !flag {
		return false
	}
	if !isTerminal(g.stdout) {
		fmt.Fprintln(g.stderr, "follow: --dashboard needs a terminal; running without it (see 'follow <cluster> dashboard --plain')")
		return false
	}
	return true
}

// openDashboardLog opens the log file the follower writes to while the
// dashboard draws: <data folder>/follow.log, appended to.
func openDashboardLog(home follower.Home) (*os.File, error) {
	f, err := os.OpenFile(dashboardLogPath(home), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dashboard log: %w", err)
	}
	return f, nil
}

func dashboardLogPath(home follower.Home) string { return filepath.Join(home.Dir, "follow.log") }
