package main

import (
	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/allocation/sim"
)

func newAllocCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "alloc", Short: "Allocation tools"}
	cfg := sim.DefaultConfig()
	var asJSON bool
	simulate := &cobra.Command{
		Use:   "simulate",
		Short: "Size a cluster: balance, bytes moved on join/leave/pledge change, shards below min, time",
		Long: `Simulate the allocation of a synthetic cluster and print the figures a curator
sizes a cluster by: balance (max fill / mean fill), the bytes moved when one
member joins, when a median or the largest member leaves, and when a pledge
changes (each as a ratio to the least any correct allocation must move),
shards below their minimum, and the time taken. Pledges are log-normal
(median and spread as given). The seed is printed; the same seed gives the
same figures.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			rep, err := sim.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if asJSON {
				return rep.WriteJSON(g.stdout)
			}
			return rep.WriteText(g.stdout)
		},
	}
	f := simulate.Flags()
	f.IntVar(&cfg.Members, "members", cfg.Members, "members")
	f.IntVar(&cfg.Shards, "shards", cfg.Shards, "shards")
	f.IntVar(&cfg.Replication, "replication", cfg.Replication, "replication maximum")
	f.IntVar(&cfg.MinReplication, "min-replication", 0, "replication minimum (default: the maximum)")
	f.Int64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	f.Float64Var(&cfg.Fill, "fill", cfg.Fill, "stored bytes at full replication / pledged bytes")
	f.Float64Var(&cfg.Epsilon, "epsilon", cfg.Epsilon, "load bound over the mean fill")
	f.Float64Var(&cfg.Spread, "spread", cfg.Spread, "99th / 1st percentile pledge")
	f.IntVar(&cfg.Domains, "domains", cfg.Domains, "failure domains (0: none)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(simulate)
	return cmd
}
