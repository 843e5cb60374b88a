package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/localcluster"
)

func newDemoCmd(g *globals) *cobra.Command {
	var (
		dir   string
		keep  bool
		logTo string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a local demo cluster: a curator, a sample archive, followers sharing it",
		Long: `Run a whole cluster on 127.0.0.1 in this process: a curator publishes a
generated sample archive (about 200 files, 100 MiB, in folders); three
followers pledging 40, 80 and 160 MiB join, take the shards the signed
allocation gives them, fetch them and ACK them, replication 2; the demo prints
who holds what, then a fourth follower joins and it shows the rebalance. Exits
0 when every shard has its holders' ACKs recorded in a signed head.`,
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
			_, err = localcluster.RunDemo(cmd.Context(), opt)
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder for the demo's homes and archive (default: a temporary folder, removed at the end)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary folder")
	cmd.Flags().StringVar(&logTo, "log", "", "file for the daemons' logs (default: demo.log in the demo folder)")
	return cmd
}
