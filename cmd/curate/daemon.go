package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/internal/cmdline"
)

func newDaemonCmd(g *globals) *cobra.Command {
	var (
		logLevel, logFormat string
		memory              string
		pprof               bool
	)
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the curator: libp2p node, pinset, head publishing, HTTP API",
		Long: `Run the curator daemon: it joins the cluster's libp2p network, hosts the
CRDT pinset, admits members from their signed offers, collects ACKs, publishes
a signed head when anything changed (at most once per head_interval), keeps the
IPNS record fresh (over pubsub and in the record file), and serves the HTTP API
the other curate commands use (config.json: api, default 127.0.0.1:9650).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			logger, err := newLogger(g, logLevel, logFormat)
			if err != nil {
				return usageError{err}
			}
			if err := cmdline.SetMemoryLimit(memory, 0, logger); err != nil {
				return usageError{err}
			}
			d, err := curator.OpenDaemon(cmd.Context(), curatorHome(g), curator.DaemonOptions{
				Logger: logger,
				Pprof:  pprof,
				APIReady: func(addr string) {
					if logFormat == "json" { // every line a record
						logger.Info("curator API listening", "url", "http://"+addr)
						return
					}
					fmt.Fprintf(g.stderr, "curator API listening on http://%s\n", addr)
				},
			})
			if err != nil {
				return err
			}
			defer d.Close()
			return d.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "text (key=value lines) or json (one object per line)")
	cmd.Flags().BoolVar(&pprof, "pprof", false, "serve the runtime profiles under /debug/pprof/ on the API (metrics are always at /metrics)")
	cmd.Flags().StringVar(&memory, "memory", "", `soft limit on the daemon's heap, e.g. 384MiB: the garbage collector works harder near it, trading CPU for memory (see docs/scale.md; default: GOMEMLIMIT, else none)`)
	return cmd
}

func newLogger(g *globals, level, format string) (*slog.Logger, error) {
	w := g.stderr
	if w == nil {
		w = os.Stderr
	}
	return cmdline.Logger(w, level, format)
}
