package main

import (
	"crypto/rand"
	"fmt"

	"github.com/ipfs/boxo/ipns"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/trust"
)

func newKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Create and inspect ed25519 keys (curator, cluster)",
	}
	var out string
	gen := &cobra.Command{
		Use:   "gen --out FILE",
		Short: "Generate a new key into FILE (mode 0600) and print its peer ID",
		Long: `Generate a new ed25519 key into FILE (mode 0600, refused if FILE exists).

A second curator runs this, sends the printed peer ID to a current curator,
who adds it to the trust set with a signed head.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("--out is required")}
			}
			k, err := trust.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			if err := trust.SaveKey(out, k); err != nil {
				return err
			}
			id, err := peer.IDFromPrivateKey(k)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "key written to %s\n", out)
			return printKeyID(g, id)
		},
	}
	gen.Flags().StringVar(&out, "out", "", "file to write the key to")
	show := &cobra.Command{
		Use:   "show [FILE]",
		Short: "Print the peer ID and IPNS name of a key (default: this curator's key)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := curatorHome(g).CuratorKeyPath()
			if len(args) == 1 {
				path = args[0]
			}
			k, err := trust.LoadKey(path)
			if err != nil {
				return err
			}
			id, err := peer.IDFromPrivateKey(k)
			if err != nil {
				return err
			}
			return printKeyID(g, id)
		},
	}
	cmd.AddCommand(gen, show)
	return cmd
}

func printKeyID(g *globals, id peer.ID) error {
	_, err := fmt.Fprintf(g.stdout, "peer ID    %s\nIPNS name  %s\n", id, ipns.NameFromPeer(id))
	return err
}
