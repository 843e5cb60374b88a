package main

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/trust"
)

func newInitCmd(g *globals) *cobra.Command {
	var (
		keyPath   string
		listen    []string
		api       string
		replMin   int
		replMax   int
		shardSize string
		interval  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "init <cluster-name>",
		Short: "Create a curator and a new cluster: keys, signed genesis head, configs, IPNS record",
		Long: `Create a curator and a new cluster in --home.

Writes a curator key and a cluster key (mode 0600), signs the genesis head
(trust set: this curator), stores it, and writes cluster.json (what followers
join with), config.json (this curator's settings) and the genesis IPNS record
file. Prints the cluster name: the IPNS name of the cluster key.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := configs.DefaultCurator()
			if len(listen) > 0 {
				cfg.Listen = listen
			}
			if api != "" {
				cfg.API = api
			}
			if cmd.Flags().Changed("replication-min") {
				cfg.ReplicationMin = replMin
			}
			if cmd.Flags().Changed("replication-max") {
				cfg.ReplicationMax = replMax
			}
			if interval > 0 {
				cfg.HeadInterval = configs.Duration(interval)
			}
			if shardSize != "" {
				s, err := configs.ParseSize(shardSize)
				if err != nil {
					return usageError{fmt.Errorf("--shard-size: %w", err)}
				}
				cfg.ShardTarget = s
			}
			opt := curator.InitOptions{Name: args[0], Config: cfg, Now: time.Now(), Rand: rand.Reader}
			if keyPath != "" {
				k, err := trust.LoadKey(keyPath)
				if err != nil {
					return err
				}
				opt.CuratorKey = k
			}
			home := curator.Home{Dir: g.home}
			res, err := home.Init(cmd.Context(), opt)
			if err != nil {
				return err
			}
			w := g.stdout
			fmt.Fprintf(w, "cluster %s initialised in %s\n\n", args[0], home.Dir)
			fmt.Fprintf(w, "  cluster name (IPNS)  %s\n", res.ClusterID)
			fmt.Fprintf(w, "  curator peer ID      %s\n", res.Curator)
			fmt.Fprintf(w, "  genesis head         %s (seq 0)\n", res.Genesis)
			fmt.Fprintf(w, "  record file          %s\n", res.RecordFile)
			fmt.Fprintf(w, "  cluster config       %s\n", home.ClusterPath())
			fmt.Fprintf(w, "  curator config       %s\n", home.ConfigPath())
			fmt.Fprintf(w, "  keys                 %s, %s\n", home.CuratorKeyPath(), home.ClusterKeyPath())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyPath, "key", "", "use this existing curator key instead of generating one")
	f.StringSliceVar(&listen, "listen", nil, "libp2p listen multiaddrs (default /ip4/0.0.0.0/tcp/4050, /ip4/0.0.0.0/udp/4050/quic-v1)")
	f.StringVar(&api, "api", "", "host:port of the daemon's HTTP API (default 127.0.0.1:9650)")
	f.IntVar(&replMin, "replication-min", 2, "default replication minimum of new pins")
	f.IntVar(&replMax, "replication-max", 3, "default replication maximum of new pins")
	f.StringVar(&shardSize, "shard-size", "", "target shard size, e.g. 4GiB (default: derived from pledges)")
	f.DurationVar(&interval, "head-interval", 0, "least time between two heads (default 10s)")
	return cmd
}

// exactArgs is cobra.ExactArgs with a usage error (exit status 2).
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s), got %d (see '%s --help')", cmd.Name(), n, len(args), cmd.CommandPath())}
		}
		return nil
	}
}
