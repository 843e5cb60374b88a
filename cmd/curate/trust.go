package main

import (
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/trust"
)

func newTrustCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Add, remove or rotate curator keys (each change is a signed head)",
	}
	change := func(use, short string, build func(args []string) curator.TrustRequest, nargs int) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  exactArgs(nargs),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client(g)
				if err != nil {
					return err
				}
				s, err := c.ChangeTrust(cmd.Context(), build(args))
				if err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "head seq %d published; curators: %s\n", s.Head.Seq, strings.Join(s.Curators, ", "))
				return nil
			},
		}
	}
	cmd.AddCommand(
		change("add <peer-id>", "Add a curator key to the trust set",
			func(a []string) curator.TrustRequest { return curator.TrustRequest{Add: a} }, 1),
		change("remove <peer-id>", "Remove a curator key; it can sign nothing after this head",
			func(a []string) curator.TrustRequest { return curator.TrustRequest{Remove: a} }, 1),
		change("rotate <old-peer-id> <new-peer-id>", "Replace a curator key by another in one head",
			func(a []string) curator.TrustRequest { return curator.TrustRequest{Remove: a[:1], Add: a[1:]} }, 2),
	)
	return cmd
}

func newJoinCmd(g *globals) *cobra.Command {
	var keyPath, clusterKeyPath string
	var listen []string
	var api string
	cmd := &cobra.Command{
		Use:   "join <cluster-config>",
		Short: "Become a curator of an existing cluster (after 'curate trust add' by a current one)",
		Long: `Create a curator home for an existing cluster from its exported config (a
file or the JSON text), with this curator's own key (--key, or a new one). A
current curator then adds the printed peer ID with 'curate trust add'. Give
--cluster-key to publish the cluster's IPNS record from this curator too.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cluster, err := follower.ParseClusterConfig(args[0])
			if err != nil {
				return err
			}
			cfg := configs.DefaultCurator()
			if len(listen) > 0 {
				cfg.Listen = listen
			}
			if api != "" {
				cfg.API = api
			}
			opt := curator.JoinOptions{Cluster: cluster, Config: cfg, Rand: rand.Reader}
			for _, kp := range []struct {
				path string
				dst  *crypto.PrivKey
			}{{keyPath, &opt.CuratorKey}, {clusterKeyPath, &opt.ClusterKey}} {
				if kp.path == "" {
					continue
				}
				if *kp.dst, err = trust.LoadKey(kp.path); err != nil {
					return err
				}
			}
			id, err := curatorHome(g).Join(opt)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "curator home for cluster %s created in %s\n  curator peer ID  %s\n\n", cluster.Name, g.home, id)
			fmt.Fprintf(g.stdout, "A current curator adds it with:\n  curate trust add %s\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "use this curator key instead of generating one")
	cmd.Flags().StringVar(&clusterKeyPath, "cluster-key", "", "copy of the cluster key, to publish IPNS records")
	cmd.Flags().StringSliceVar(&listen, "listen", nil, "libp2p listen multiaddrs")
	cmd.Flags().StringVar(&api, "api", "", "host:port of the daemon's HTTP API")
	return cmd
}
