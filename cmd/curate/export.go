package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dustin/go-humanize/english"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/publish"
	"github.com/pinfold/pinfold/trust"
)

func curatorHome(g *globals) curator.Home { return curator.Home{Dir: g.home} }

func newExportConfigCmd(g *globals) *cobra.Command {
	var (
		out       string
		bootstrap []string
		latest    bool
	)
	cmd := &cobra.Command{
		Use:   "export-config",
		Short: "Print (or write) the cluster config followers join with",
		Long: `Print the cluster config followers join with ('follow <name> init <file>').

Bootstrap addresses are the --bootstrap multiaddrs given, plus this curator's
listen addresses that name a concrete IP. With --checkpoint-latest the config
names the newest head (and its trust set) as the followers' starting point
instead of the genesis head.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := curatorHome(g).Load()
			if err != nil {
				return err
			}
			cluster := l.Cluster
			id, err := peer.IDFromPrivateKey(l.CuratorKey)
			if err != nil {
				return err
			}
			cluster.Bootstrap = append(append([]string{}, cluster.Bootstrap...), bootstrap...)
			// A running daemon knows its real addresses (ports chosen at start).
			if s, err := curator.NewClient(l).Status(cmd.Context()); err == nil {
				cluster.Bootstrap = append(cluster.Bootstrap, s.Addrs...)
			}
			for _, s := range l.Config.Listen {
				a, err := ma.NewMultiaddr(s)
				if err != nil {
					continue // Validate already accepted it; nothing to add
				}
				if ip, err := manet.ToIP(a); err == nil && !ip.IsUnspecified() && !hasPort0(a) {
					cluster.Bootstrap = append(cluster.Bootstrap, a.Encapsulate(ma.StringCast("/p2p/"+id.String())).String())
				}
			}
			cluster.Bootstrap = slices.Compact(slices.Sorted(slices.Values(cluster.Bootstrap)))
			if latest && daemonUp(l.Home) {
				// The daemon holds the datastore: ask it for its newest head.
				s, err := curator.NewClient(l).Status(cmd.Context())
				if err != nil {
					return err
				}
				if s.Head == nil {
					return errors.New("export-config: the daemon has no verified head yet")
				}
				cluster.Checkpoint = configs.Checkpoint{Head: s.Head.CID, Seq: s.Head.Seq, Trust: s.Curators}
			} else if latest {
				st, err := curator.OpenStore(l.Home.DatastorePath())
				if err != nil {
					return err
				}
				defer st.Close()
				c, err := st.Head(cmd.Context())
				if err != nil {
					return err
				}
				sh, err := st.DAG.SignedHead(cmd.Context(), c)
				if err != nil {
					return err
				}
				cluster.Checkpoint = configs.Checkpoint{Head: c.String(), Seq: sh.Head.Seq, Trust: peerStrings(sh.Head.Trust)}
			}
			if err := cluster.Validate(); err != nil {
				return err
			}
			if out != "" {
				if err := configs.Save(out, &cluster, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(g.stderr, "cluster config written to %s\n", out)
				return nil
			}
			enc := json.NewEncoder(g.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(cluster)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write to this file instead of stdout")
	cmd.Flags().StringSliceVar(&bootstrap, "bootstrap", nil, "extra bootstrap multiaddrs (with /p2p/<peer ID>)")
	cmd.Flags().BoolVar(&latest, "checkpoint-latest", false, "make the newest head the followers' trusted starting point")
	return cmd
}

// daemonUp reports whether a daemon holds the home's datastore.
func daemonUp(h curator.Home) bool {
	_, up := curator.DaemonRunning(h)
	return up
}

func peerStrings(ids [][]byte) []string {
	out := make([]string, 0, len(ids))
	for _, b := range ids {
		out = append(out, peer.ID(b).String())
	}
	return out
}

func newExportRecordCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export-record",
		Short: "Write the IPNS record of the newest head to a record file",
		Long: `Sign an IPNS record for the newest head with the cluster key and write it
to a record file (default <home>/<cluster name>.ipns). The file is the raw
record: it can travel by any means and be verified with 'curate verify-record'
or imported into any IPFS node ('ipfs routing put').`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := curatorHome(g).Load()
			if err != nil {
				return err
			}
			if l.ClusterKey == nil {
				return fmt.Errorf("export-record: this curator does not hold the cluster key (%s)", l.Home.ClusterKeyPath())
			}
			name, err := l.ClusterName()
			if err != nil {
				return err
			}
			if out == "" {
				out = l.Home.RecordPath(name)
			}
			if daemonUp(l.Home) {
				// The daemon holds the datastore: it signs the record.
				res, err := curator.NewClient(l).ExportRecord(cmd.Context())
				if err != nil {
					return fmt.Errorf("export-record through the running daemon: %w", err)
				}
				if err := publish.WriteRecordFile(out, res.Record); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "record for head %s (seq %d) written to %s, valid until %s (signed by the running daemon)\n",
					res.Head, res.Seq, out, res.EOL.UTC().Format(time.RFC3339))
				return nil
			}
			st, err := curator.OpenStore(l.Home.DatastorePath())
			if err != nil {
				return err
			}
			defer st.Close()
			c, err := st.Head(cmd.Context())
			if err != nil {
				return err
			}
			sh, err := st.DAG.SignedHead(cmd.Context(), c)
			if err != nil {
				return err
			}
			cfg := publish.RecordConfig{Validity: time.Duration(l.Config.RecordValidity), TTL: time.Duration(l.Config.RecordTTL)}
			rec, err := publish.BuildRecord(l.ClusterKey, c, uint64(sh.Head.Seq), time.Now(), cfg)
			if err != nil {
				return err
			}
			if err := publish.WriteRecordFile(out, rec.Raw); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "record for head %s (seq %d) written to %s, valid until %s\n",
				c, sh.Head.Seq, out, rec.EOL.UTC().Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "record file to write (default <home>/<cluster name>.ipns)")
	return cmd
}

func newVerifyRecordCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify-record FILE",
		Short: "Verify a record file against the cluster name and, when the head is known here, the trust chain",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := curatorHome(g).Load()
			if err != nil {
				return err
			}
			name, err := l.ClusterName()
			if err != nil {
				return err
			}
			rec, err := publish.ReadRecordFile(args[0], name, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "record: valid for cluster %s: head %s, seq %d, valid until %s\n",
				name, rec.Head, rec.Seq, rec.EOL.UTC().Format(time.RFC3339))
			if pid, up := curator.DaemonRunning(l.Home); up {
				return fmt.Errorf("verify-record: the trust chain is in the datastore, which the running daemon (pid %d) holds: stop it ('kill %d') or verify with another curator home", pid, pid)
			}
			st, err := curator.OpenStore(l.Home.DatastorePath())
			if err != nil {
				return err
			}
			defer st.Close()
			rules, err := rulesFor(l.Cluster)
			if err != nil {
				return err
			}
			checkpoint, err := cid.Decode(l.Cluster.Checkpoint.Head)
			if err != nil {
				return err
			}
			get := func(c cid.Cid) ([]byte, error) {
				b, err := st.Blocks.Get(cmd.Context(), c)
				if err != nil {
					return nil, err
				}
				return b.RawData(), nil
			}
			head, hops, err := verifyFromCheckpoint(rules, checkpoint, l.Cluster.Checkpoint.Seq, rec.Head, get, time.Now())
			if err != nil {
				return fmt.Errorf("record points at head %s: %w", rec.Head, err)
			}
			if err := publish.CheckHead(rec, head.CID, uint64(head.Head.Seq)); err != nil {
				return err
			}
			signer := head.Sig.Signer
			fmt.Fprintf(g.stdout, "head:   verified from checkpoint seq %d through %s; signed by curator %s\n",
				l.Cluster.Checkpoint.Seq, english.Plural(hops, "head", ""), peer.ID(signer))
			return nil
		},
	}
	return cmd
}

// verifyFromCheckpoint verifies head to against the trusted checkpoint: the
// checkpoint itself (re-verified when it is a genesis head), or a chain of
// heads descending from it. It returns the verified head and the number of
// heads verified.
func verifyFromCheckpoint(r trust.Rules, checkpoint cid.Cid, checkpointSeq int64, to cid.Cid, get trust.Getter, now time.Time) (trust.Verified, int, error) {
	if to.Equals(checkpoint) {
		data, err := get(to)
		if err != nil {
			return trust.Verified{}, 0, err
		}
		if checkpointSeq == 0 {
			v, err := trust.VerifyHead(r, nil, data, now)
			return v, 1, err
		}
		sh, err := dag.DecodeSignedHead(data)
		if err != nil {
			return trust.Verified{}, 0, err
		}
		return trust.Verified{SignedHead: sh, CID: to}, 0, nil
	}
	heads, err := trust.VerifyChain(r, checkpoint, to, get, now)
	if err != nil {
		return trust.Verified{}, 0, err
	}
	return heads[len(heads)-1], len(heads), nil
}

// rulesFor builds the verification rules of a cluster config.
func rulesFor(c configs.Cluster) (trust.Rules, error) {
	ids, err := c.TrustIDs()
	if err != nil {
		return trust.Rules{}, err
	}
	cl, err := peer.Decode(c.ID)
	if err != nil {
		return trust.Rules{}, fmt.Errorf("cluster.id: %w", err)
	}
	return trust.Rules{Cluster: cl, Trust: ids, MaxSkew: trust.DefaultMaxSkew}, nil
}

func hasPort0(a ma.Multiaddr) bool {
	for _, code := range []int{ma.P_TCP, ma.P_UDP} {
		if v, err := a.ValueForProtocol(code); err == nil && v == "0" {
			return true
		}
	}
	return false
}
