package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/localcluster"
	"github.com/pinfold/pinfold/tui"
)

func newDemoCmd(g *globals) *cobra.Command {
	var (
		dir   string
		keep  bool
		logTo string
		plain bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a local demo cluster: a curator, a sample archive, followers sharing it",
		Long: `Run a whole cluster on 127.0.0.1 in this process: a curator publishes a
generated sample archive (about 200 files, 100 MiB, in folders); three
followers pledging 40, 80 and 160 MiB join, take the shards the signed
allocation gives them, fetch them and ACK them, replication 2; the demo prints
who holds what, then a fourth follower joins and it shows the rebalance. Exits
0 when every shard has its holders' ACKs recorded in a signed head.

On a terminal the demo draws the curator's dashboard while it runs (q stops
the demo) and prints its full report when it ends; --plain, or output that is
not a terminal, prints the progress and the tables as text only.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				d, err := os.MkdirTemp("", "pinfold-demo-")
				if err != nil {
					return err
				}
				dir = d
				if !keep {
					defer os.RemoveAll(dir)
				}
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			logPath := logTo
			if logPath == "" {
				logPath = filepath.Join(dir, "demo.log")
			}
			lf, err := os.Create(logPath)
			if err != nil {
				return err
			}
			defer lf.Close()
			fmt.Fprintf(g.stdout, "pinfold demo in %s (daemon logs: %s)\n\n", dir, logPath)
			opt := localcluster.DefaultDemo(dir, g.stdout)
			opt.Logger = slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo}))
			if plain || !isTerminal(g.stdout) {
				_, err = localcluster.RunDemo(cmd.Context(), opt)
				return err
			}
			return demoWithDashboard(cmd.Context(), g, opt)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder for the demo's homes and archive (default: a temporary folder, removed at the end)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary folder")
	cmd.Flags().StringVar(&logTo, "log", "", "file for the daemons' logs (default: demo.log in the demo folder)")
	cmd.Flags().BoolVar(&plain, "plain", false, "print progress and tables as text, without the dashboard")
	return cmd
}

// demoWithDashboard runs the demo behind the curator dashboard. The demo's
// report is kept and printed once the dashboard closes: when the demo ends,
// or when q stops it early.
func demoWithDashboard(ctx context.Context, g *globals, opt localcluster.DemoOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	report := &progress{}
	opt.Out = report
	src := &demoSource{ready: make(chan struct{}), note: report.last}
	opt.OnStart = src.attach
	done := make(chan error, 1)
	dashCtx, closeDash := context.WithCancel(ctx)
	defer closeDash()
	go func() { // ends when the demo does; the demo ends with ctx
		_, err := localcluster.RunDemo(ctx, opt)
		done <- err
		closeDash()
	}()
	dashErr := tui.RunCurator(dashCtx, src.snapshot, tui.RunOptions{Options: tui.Options{
		Title:    "pinfold demo",
		QuitNote: "stops the demo",
		Help:     "The demo cluster runs in this process: quitting stops it. Its report prints when it ends.",
	}})
	cancel() // q stops the demo
	demoErr := <-done
	_, _ = g.stdout.Write(report.bytes())
	if dashErr != nil {
		return dashErr
	}
	if errors.Is(demoErr, context.Canceled) && ctx.Err() != nil {
		_, _ = io.WriteString(g.stdout, "\ndemo stopped before its end\n")
		return nil
	}
	return demoErr
}

// demoSource feeds the dashboard from the demo's in-process curator.
type demoSource struct {
	ready     chan struct{}
	readyOnce sync.Once
	note      func() string

	mu      sync.Mutex            // held while a snapshot reads the cluster
	cluster *localcluster.Cluster // nil before the curator runs and once the demo closes it
	last    tui.CuratorSnapshot
}

// attach is DemoOptions.OnStart.
func (s *demoSource) attach(c *localcluster.Cluster) func() {
	s.mu.Lock()
	s.cluster = c
	s.mu.Unlock()
	s.readyOnce.Do(func() { close(s.ready) })
	return func() {
		s.mu.Lock()
		s.cluster = nil
		s.mu.Unlock()
	}
}

// snapshot waits for the curator to run, then reads it; once the demo has
// closed the cluster it repeats the last snapshot.
func (s *demoSource) snapshot(ctx context.Context) (tui.CuratorSnapshot, error) {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return tui.CuratorSnapshot{}, errors.New("the demo's curator is starting (generating the sample archive)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cluster == nil {
		snap := s.last
		snap.Note = s.note()
		return snap, nil
	}
	d := s.cluster.Curator
	snap := tui.CuratorSnapshot{Status: d.Status(), Note: s.note()}
	var err error
	if snap.Members, err = d.MemberLoads(ctx); err != nil {
		return snap, err
	}
	if snap.Shards, err = d.Shards(ctx); err != nil {
		return snap, err
	}
	s.last = snap
	return snap, nil
}

// progress keeps the demo's report, and its newest line for the dashboard.
type progress struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *progress) bytes() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.buf.Bytes())
}

// last returns the newest progress line ("[ 12.3s] ..."), skipping tables.
func (p *progress) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := strings.Split(strings.TrimRight(p.buf.String(), "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "[") || strings.HasPrefix(lines[i], "demo finished") {
			return lines[i]
		}
	}
	return ""
}
