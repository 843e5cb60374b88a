package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/dustin/go-humanize/english"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spf13/cobra"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/kubo"
)

func newInitCmd(g *globals, name string) *cobra.Command {
	var (
		storage   string
		nickname  string
		domain    string
		listen    []string
		ipfsAPI   string
		boot      []string
		trustID   string
		offline   bool
		limits    limitFlags
		diskGuard bool
		noNAT     bool
		noMap     bool
	)
	cmd := &cobra.Command{
		Use:   "init <cluster-config | URL | IPNS name>",
		Short: "Join cluster " + name + " from its config (a file, a URL, the JSON text) or its IPNS name",
		Long: `Join a cluster. Creates this follower's key and its data folder
<root>/<cluster>, with a config.json you can read and edit. The cluster is
given as one of:

  a file or the JSON text   the config its curators export ('curate export-config')
  an http(s) URL            where they publish that config (fetched within 10 s, at most 1 MiB)
  an IPNS name (k51…)       with --bootstrap (one or more peers of the cluster) and
                            --trust (the peer ID of a curator you trust)

Trust comes from the config's checkpoint: the head, and the curator keys,
that every later head must descend from. An IPNS name names only the
cluster key, which signs nothing but IPNS records: whoever holds it could
point the name at a chain of its own, so the name alone is no trust root.
Joining by name therefore takes the peer ID of one curator you trust,
obtained the way you obtained the name: the newest head the bootstrap
peers hold must be signed by that curator, and it becomes the checkpoint.

Unless --offline, init asks the config's bootstrap peers for the
cluster's newest head, and refuses a config none of whose reachable peers
serve its cluster (a mistyped or altered cluster id). With no peer
reachable it warns and goes on.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opt := follower.JoinOptions{Bootstrap: boot}
			if trustID != "" {
				id, err := peer.Decode(trustID)
				if err != nil {
					return usageError{fmt.Errorf("--trust %q: %w", trustID, err)}
				}
				opt.Trust = id
			}
			cluster, err := follower.LoadClusterConfig(cmd.Context(), args[0], opt)
			if err != nil {
				return err
			}
			cluster.Bootstrap = slices.Compact(slices.Sorted(slices.Values(append(cluster.Bootstrap, boot...))))
			if err := cluster.Validate(); err != nil {
				return err
			}
			if !offline {
				err := follower.CheckClusterOnline(cmd.Context(), cluster, follower.JoinOptions{})
				switch {
				case errors.Is(err, follower.ErrNoPeers):
					fmt.Fprintf(g.stderr, "warning: could not check the cluster online (%v); joining anyway\n", err)
				case err != nil:
					return err
				}
			}
			cfg := configs.DefaultFollower()
			if storage != "" {
				p, err := configs.ParsePledge(storage)
				if err != nil {
					return usageError{fmt.Errorf("--storage: %w", err)}
				}
				cfg.Storage = p
			}
			cfg.Nickname, cfg.Domain, cfg.DiskGuard = nickname, domain, diskGuard
			if err := limits.set(&cfg); err != nil {
				return err
			}
			if ipfsAPI != "" {
				if _, err := kubo.ParseAPI(ipfsAPI); err != nil {
					return usageError{fmt.Errorf("--ipfs-api: %w", err)}
				}
				cfg.IPFSAPI = ipfsAPI
			}
			if len(listen) > 0 {
				cfg.Listen = listen
			}
			if noNAT {
				cfg.NAT.Traversal = false
			}
			if noNAT || noMap {
				cfg.NAT.PortMap = false
			}
			home, err := g.followRoot().Home(name)
			if err != nil {
				return usageError{err}
			}
			id, err := home.Init(cluster, cfg, rand.Reader)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "following cluster %s (%s) from %s\n", name, cluster.ID, home.Dir)
			fmt.Fprintf(g.stdout, "  follower peer ID  %s\n  pledge            %s\n", id, cfg.Storage)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&storage, "storage", "", `disk to donate: a size ("500GiB") or a share of the free disk ("80%", the default)`)
	f.StringVar(&nickname, "nickname", "", "name shown to curators")
	f.StringVar(&domain, "domain", "", "failure-domain tag (region, organisation)")
	f.StringSliceVar(&listen, "listen", nil, "libp2p listen multiaddrs (default /ip4/0.0.0.0/tcp/4051, /ip4/0.0.0.0/udp/4051/quic-v1; the curator's default is 4050)")
	f.StringSliceVar(&boot, "bootstrap", nil, "peers of the cluster, /ip4/…/tcp/…/p2p/<peer ID> (required with an IPNS name)")
	f.StringVar(&trustID, "trust", "", "peer ID of a curator you trust (required with an IPNS name)")
	f.BoolVar(&offline, "offline", false, "do not check the config against the cluster's peers")
	f.BoolVar(&noNAT, "no-nat", false, "no NAT traversal: no AutoNAT, relays, hole punching or port mapping (forward the listen port on the router instead)")
	f.BoolVar(&noMap, "no-port-map", false, "keep NAT traversal but never ask the router for a port mapping (UPnP, NAT-PMP)")
	f.BoolVar(&diskGuard, "disk-guard", true, "keep a reserve of free space and badger's logs allocated so that a disk filled by another program cannot crash the follower (about 400 MiB)")
	f.StringVar(&ipfsAPI, "ipfs-api", "", "store content in an existing kubo daemon through its RPC API (e.g. http://127.0.0.1:5001) instead of the embedded store")
	limits.add(cmd)
	return cmd
}

func newInfoCmd(g *globals, name string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show this follower's identity, pledge and cluster",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := g.followRoot().Home(name)
			if err != nil {
				return usageError{err}
			}
			l, err := home.Load()
			if err != nil {
				return err
			}
			info := struct {
				Cluster string           `json:"cluster"`
				ID      string           `json:"cluster_id"`
				Peer    string           `json:"peer_id"`
				Folder  string           `json:"folder"`
				Config  configs.Follower `json:"config"`
				Trust   []string         `json:"checkpoint_trust"`
				Boot    []string         `json:"bootstrap"`
			}{name, l.Cluster.ID, l.ID.String(), home.Dir, l.Config, l.Cluster.Checkpoint.Trust, l.Cluster.Bootstrap}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			w := g.stdout
			fmt.Fprintf(w, "cluster     %s (%s)\n", name, info.ID)
			fmt.Fprintf(w, "peer ID     %s\n", info.Peer)
			fmt.Fprintf(w, "folder      %s\n", info.Folder)
			fmt.Fprintf(w, "pledge      %s\n", l.Config.Storage)
			fmt.Fprintf(w, "bandwidth   upload %s, download %s\n", l.Config.MaxUpload, l.Config.MaxDownload)
			if l.Config.Nickname != "" {
				fmt.Fprintf(w, "nickname    %s\n", l.Config.Nickname)
			}
			fmt.Fprintf(w, "curators    %d at checkpoint seq %d\n", len(info.Trust), l.Cluster.Checkpoint.Seq)
			fmt.Fprintf(w, "bootstrap   %s\n", english.Plural(len(info.Boot), "address", "addresses"))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every cluster followed",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := g.followRoot().List()
			if err != nil {
				return err
			}
			if asJSON {
				if names == nil {
					names = []string{}
				}
				return json.NewEncoder(g.stdout).Encode(names)
			}
			if len(names) == 0 {
				fmt.Fprintf(g.stdout, "no clusters followed under %s\n", g.root)
				return nil
			}
			for _, n := range names {
				fmt.Fprintln(g.stdout, n)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printJSON(g *globals, v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// setStorage changes the pledge in the follower's config.json.
func setStorage(home follower.Home, storage string) error {
	p, err := configs.ParsePledge(storage)
	if err != nil {
		return usageError{fmt.Errorf("--storage: %w", err)}
	}
	return editConfig(home, func(cfg *configs.Follower) error { cfg.Storage = p; return nil })
}

// editConfig loads the follower's config.json, applies edit and saves it.
func editConfig(home follower.Home, edit func(*configs.Follower) error) error {
	cfg := configs.DefaultFollower()
	if err := configs.Load(home.ConfigPath(), &cfg); err != nil {
		return err
	}
	if err := edit(&cfg); err != nil {
		return err
	}
	return configs.Save(home.ConfigPath(), &cfg, 0o644)
}

// limitFlags are --max-upload and --max-download, of init and run.
type limitFlags struct{ up, down string }

func (l *limitFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&l.up, "max-upload", "", `bound bitswap's upload (blocks served, wants sent), e.g. 5MB/s, 512KiB/s, 40Mbit/s or "unlimited"; at least 64KiB/s; saved in config.json`)
	f.StringVar(&l.down, "max-download", "", `bound bitswap's download (shards fetched, the pinset's blocks), like --max-upload; saved in config.json`)
}

// set applies the flags given to cfg; it changes nothing on error.
func (l *limitFlags) set(cfg *configs.Follower) error {
	up, down := cfg.MaxUpload, cfg.MaxDownload
	for _, f := range []struct {
		name, text string
		dst        *configs.Rate
	}{{"--max-upload", l.up, &up}, {"--max-download", l.down, &down}} {
		if f.text == "" {
			continue
		}
		r, err := configs.ParseRate(f.text)
		if err != nil {
			return usageError{fmt.Errorf("%s: %w", f.name, err)}
		}
		if err := r.ValidateLimit(f.name); err != nil {
			return usageError{err}
		}
		*f.dst = r
	}
	cfg.MaxUpload, cfg.MaxDownload = up, down
	return nil
}

// given reports whether either flag was given.
func (l *limitFlags) given() bool { return l.up != "" || l.down != "" }

// save writes the flags given into the follower's config.json.
func (l *limitFlags) save(home follower.Home) error { return editConfig(home, l.set) }
