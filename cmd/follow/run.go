package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/dustin/go-humanize/english"
	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/internal/cmdline"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/tui"
)

func newRunCmd(g *globals, name string) *cobra.Command {
	var (
		logLevel string
		record   string
		storage  string
		ipfsAPI  string

		dashboard bool
		pprof     bool
		logFormat string
		memory    string
		limits    limitFlags
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Follow cluster " + name + ": verify heads, replicate the pinset, offer storage",
		Long: `Join the cluster and keep following it: resolve the newest head (pubsub,
peers, or --record FILE), verify it against the trust chain, replicate the
pinset, send signed offers with the pledge, and serve a control API on
127.0.0.1 for 'follow ` + name + ` status' and 'stop'. Stops on Ctrl-C.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			logger, err := cmdline.Logger(g.stderr, logLevel, logFormat)
			if err != nil {
				return usageError{err}
			}
			home, err := g.followRoot().Home(name)
			if err != nil {
				return usageError{err}
			}
			if storage != "" {
				if err := setStorage(home, storage); err != nil {
					return err
				}
			}
			if limits.given() {
				if err := limits.save(home); err != nil {
					return err
				}
			}
			draw := wantDashboard(g, dashboard)
			if draw { // logs go to a file while the dashboard draws
				logFile, err := openDashboardLog(home)
				if err != nil {
					return err
				}
				defer logFile.Close()
				if logger, err = cmdline.Logger(logFile, logLevel, logFormat); err != nil {
					return usageError{err}
				}
			}
			// The limit applies before the datastore opens: an index
			// rebuild after a crash reads the whole pinset. A config that
			// does not load leaves none; OpenDaemon then says why.
			var configured configs.Size
			if l, err := home.Load(); err == nil {
				configured = l.Config.Memory
			}
			if err := cmdline.SetMemoryLimit(memory, configured, logger); err != nil {
				return usageError{err}
			}
			d, err := follower.OpenDaemon(cmd.Context(), home, follower.DaemonOptions{Logger: logger, RecordFile: record, IPFSAPI: ipfsAPI, Pprof: pprof})
			if err != nil {
				return err
			}
			defer d.Close()
			if draw {
				return runWithDashboard(cmd.Context(), g, name, dashboardLogPath(home), d)
			}
			return d.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&record, "record", "", "IPNS record file to resolve the newest head from")
	cmd.Flags().StringVar(&storage, "storage", "", `change the pledge ("500GiB" or "80%") and save it in config.json`)
	cmd.Flags().StringVar(&ipfsAPI, "ipfs-api", "", "store content in this kubo daemon (its RPC API, e.g. http://127.0.0.1:5001) for this run, overriding config.json's ipfs_api")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "text (key=value lines) or json (one object per line)")
	cmd.Flags().BoolVar(&pprof, "pprof", false, "serve the runtime profiles under /debug/pprof/ on the control API (metrics are always at /metrics)")
	cmd.Flags().StringVar(&memory, "memory", "", `soft limit on the follower's heap for this run, e.g. 256MiB, or 0 for none: the garbage collector works harder near it (see docs/scale.md; default: GOMEMLIMIT, else config.json's memory, 160MiB unless changed)`)
	limits.add(cmd)
	cmd.Flags().BoolVar(&dashboard, "dashboard", false, "draw the dashboard while running (logs go to follow.log in the data folder; q stops the follower)")
	return cmd
}

func newStatusCmd(g *globals, name string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running follower: head, pinset, pledge, shards proven, audits, peers, rejections",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := g.followRoot().Home(name)
			if err != nil {
				return usageError{err}
			}
			c, err := follower.Dial(home)
			if errors.Is(err, follower.ErrStarting) {
				// Not serving yet, but on its way: say what it is doing.
				if asJSON {
					return printJSON(g, map[string]string{"cluster": name, "state": "starting", "detail": err.Error()})
				}
				_, phase, _ := strings.Cut(err.Error(), follower.ErrStarting.Error()+": ")
				fmt.Fprintf(g.stdout, "cluster %s: starting: %s\n", name, phase)
				return nil
			}
			if err != nil {
				return err
			}
			s, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g, s)
			}
			return writeStatus(g.stdout, s, time.Now())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// writeStatus prints a follower's status as text; now dates its ages.
func writeStatus(w io.Writer, s follower.Status, now time.Time) error {
	tw := tabwriter.NewWriter(w, 11, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "cluster\t%s (%s)\n", s.Cluster, s.ClusterID)
	fmt.Fprintf(tw, "peer\t%s\n", s.Peer)
	if s.Head != nil {
		fmt.Fprintf(tw, "head\tseq %d, %s ago, verified, signed by curator %s\n", s.Head.Seq,
			now.Sub(s.Head.Time).Round(time.Second), s.Head.Signer)
	} else {
		fmt.Fprintf(tw, "head\tnone verified yet\n")
	}
	fmt.Fprintf(tw, "pins\t%d (%s) in %s, %s\n", s.Pinset.Pins, ibytes(s.Pinset.Bytes), english.Plural(s.Pinset.Shards, "shard", ""), tui.PinsetState(s.Pinset))
	fmt.Fprintf(tw, "pledge\t%s (free %s)\n", humanize.IBytes(uint64(max(s.Pledged, 0))), humanize.IBytes(uint64(max(s.Free, 0))))
	// A copy counts once an audit proved it: say how many do.
	fmt.Fprintf(tw, "shards\t%s\n", tui.ShardSummary(s))
	fmt.Fprintf(tw, "audits\t%s\n", tui.AuditSummary(s.Audits, now))
	fmt.Fprintf(tw, "next\t%s\n", tui.NextAction(s))
	if s.DiskError != "" {
		fmt.Fprintf(tw, "disk\t%s\n", s.DiskError)
	}
	if s.DiskPaused != "" {
		fmt.Fprintf(tw, "disk\t%s\n", s.DiskPaused)
	}
	fmt.Fprintf(tw, "peers\t%d connected; curators reachable %d of %d\n", s.Peers, tui.Reachable(s.Curators), len(s.Curators))
	if s.Reach != nil {
		fmt.Fprintf(tw, "reachable\t%s\n", reachLine(*s.Reach))
	}
	if len(s.Provide) > 0 {
		fmt.Fprintf(tw, "announced\t%s\n", provideLine(s.Provide))
	}
	fmt.Fprintf(tw, "traffic\t%s\n", tui.TrafficSummary(s.Bandwidth))
	if s.AcksPending > 0 {
		fmt.Fprintf(tw, "acks\t%d waiting for a signed head to record them (sent again until one does)\n", s.AcksPending)
	}
	for i, line := range p2p.RefusalLines(s.Refused, 8) {
		label := ""
		if i == 0 {
			label = "refused"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, line)
	}
	if len(s.Penalised) > 0 || s.FetchRenewals > 0 {
		fmt.Fprintf(tw, "bitswap\t%s\n", bitswapLine(s))
	}
	if len(s.Rejected) > 0 {
		fmt.Fprintf(tw, "in all\t%s\n", p2p.TotalsLine(s.Rejected))
	}
	return tw.Flush()
}

func newStopCmd(g *globals, name string) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the running follower and wait until it has stopped",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := g.followRoot().Home(name)
			if err != nil {
				return usageError{err}
			}
			if !home.Initialised() {
				return fmt.Errorf("%s: %w", name, follower.ErrNotInitialised)
			}
			pid, running := follower.Running(home)
			if !running {
				return fmt.Errorf("%s: %w", name, follower.ErrNotRunning)
			}
			c, err := follower.Dial(home)
			if err == nil {
				// A connection the follower closes while it shuts down is
				// no failure: whether it stopped is what counts.
				err = c.Stop(cmd.Context())
			}
			if err != nil && !errors.Is(err, follower.ErrStarting) && !errors.Is(err, follower.ErrNotRunning) {
				return err
			}
			if err != nil { // still opening, no API yet: signal it instead
				if p, ferr := os.FindProcess(pid); ferr == nil {
					_ = p.Signal(syscall.SIGTERM)
				}
			}
			wctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			if err := follower.WaitStopped(wctx, home); err != nil {
				return fmt.Errorf("asked the follower (pid %d) to stop, but it is %w", pid, err)
			}
			fmt.Fprintf(g.stdout, "follower of %s stopped\n", name)
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", time.Minute, "how long to wait for the follower to stop")
	return cmd
}

// bitswapLine summarises the bitswap liars caught and the stalled
// fetches restarted, reasons sorted.
func bitswapLine(s follower.Status) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s.Penalised)) {
		parts = append(parts, fmt.Sprintf("penalised %d (%s)", s.Penalised[k], k))
	}
	if s.FetchRenewals > 0 {
		parts = append(parts, fmt.Sprintf("%d stalled fetches restarted", s.FetchRenewals))
	}
	return strings.Join(parts, ", ")
}

// reachLine says whether and how peers reach the volunteer, and what to do
// if they cannot.
func reachLine(r follower.ReachInfo) string {
	line := r.Advice
	if r.Traversal {
		line += fmt.Sprintf(" (AutoNAT: %s; peers %d direct, %d relayed", r.Reachability, r.Direct, r.Relayed)
		if len(r.RelayAddrs) > 0 {
			line += fmt.Sprintf("; %s", english.Plural(len(r.RelayAddrs), "relay address", ""))
		}
		line += ")"
	}
	return line
}

// provideLine sums up the roots announced in each DHT.
func provideLine(ps []follower.ProvideInfo) string {
	var parts []string
	for _, p := range ps {
		name := "cluster DHT"
		if p.DHT != "cluster" {
			name = "other DHT"
		}
		part := fmt.Sprintf("%d roots in the %s", p.Roots, name)
		if p.Pending > 0 {
			part += fmt.Sprintf(", %d waiting", p.Pending)
		}
		if p.Failed > 0 {
			part += fmt.Sprintf(", %d failed", p.Failed)
		}
		if !p.Online {
			part += " (no DHT peer reached yet)"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}
