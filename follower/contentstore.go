package follower

import (
	"context"
	"fmt"
	"slices"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/content"
	"github.com/pinfold/pinfold/kubo"
)

// contentStore keeps the pins of the shards a follower holds: the
// embedded block store (*content.Fetcher, the default) or a kubo daemon
// (*kubo.Store, with config ipfs_api or run --ipfs-api). Every method may
// block on I/O until ctx ends; all are safe for concurrent use.
type contentStore interface {
	// Fetch stores root's whole DAG and returns its size; progress (may be
	// nil) is called with what is stored so far.
	Fetch(ctx context.Context, root cid.Cid, progress func(content.Stat)) (content.Stat, error)
	// Kept reports whether root is stored completely, with its size.
	Kept(ctx context.Context, root cid.Cid) (bool, content.Stat, error)
	// Release gives root up and returns the bytes it frees.
	Release(ctx context.Context, root cid.Cid) (int64, error)
	// Usage returns what the follower's pins take.
	Usage(ctx context.Context) (content.Stat, error)
}

var (
	_ contentStore = (*content.Fetcher)(nil)
	_ contentStore = (*kubo.Store)(nil)
)

// openContentStore sets d.fetcher: a kubo store when api is set, else the
// embedded one on the node's blocks.
func (d *Daemon) openContentStore(ctx context.Context, api string) error {
	if api == "" {
		d.fetcher = content.NewFetcher(d.node.DAGService(), d.store.Blocks, d.store.Datastore, content.FetcherConfig{
			Concurrency: d.l.Config.FetchConcurrency,
		})
		d.auditBlocks = blockGetter{d.store.Blocks}
		return nil
	}
	c, err := kubo.NewClient(api, kubo.ClientOptions{})
	if err != nil {
		return fmt.Errorf("ipfs_api: %w", err)
	}
	v, err := c.Version(ctx)
	if err != nil {
		return fmt.Errorf("kubo at %s: %w", c.API(), err)
	}
	ks, err := kubo.NewStore(c, kubo.StoreConfig{Name: d.pinName(), Peers: d.contentPeers, Now: d.now})
	if err != nil {
		return err
	}
	if err := ks.Load(ctx); err != nil {
		return fmt.Errorf("kubo at %s: %w", c.API(), err)
	}
	d.log.Info("storing content in kubo", "api", c.API(), "version", v.Version, "pin_name", ks.Name())
	d.fetcher = ks
	d.auditBlocks = kuboBlocks{c} // audits are answered from kubo's own store (offline)
	return nil
}

// blockGetter answers audits from the embedded block store, never
// through bitswap.
type blockGetter struct {
	bs interface {
		Get(context.Context, cid.Cid) (blocks.Block, error)
	}
}

func (g blockGetter) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	return g.bs.Get(ctx, c)
}

// kuboBlocks answers audits from kubo's own store (block/get offline).
type kuboBlocks struct{ c *kubo.Client }

func (k kuboBlocks) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	return k.c.BlockGet(ctx, c)
}

// pinName is the name of this follower's pins in kubo: "pinfold/<cluster>/<peer ID>".
func (d *Daemon) pinName() string {
	name := "pinfold/" + d.l.Cluster.Name + "/" + d.l.ID.String()
	if len(name) > 255 { // kubo's limit; cluster names are short in practice
		name = "pinfold/" + d.l.ID.String()
	}
	return name
}

// contentPeers returns the connected peers with the addresses the peer
// store knows for them (their listen addresses, from identify), curators
// first: the peers that can serve our shards' content to kubo.
func (d *Daemon) contentPeers() []peer.AddrInfo {
	ps := d.node.Host().Peerstore()
	var out []peer.AddrInfo
	for _, p := range d.node.Peers() {
		addrs := ps.Addrs(p.ID)
		if len(addrs) == 0 {
			addrs = p.Addrs
		}
		if len(addrs) > 0 {
			out = append(out, peer.AddrInfo{ID: p.ID, Addrs: addrs})
		}
	}
	slices.SortStableFunc(out, func(a, b peer.AddrInfo) int {
		ta, tb := d.trusted(a.ID), d.trusted(b.ID)
		switch {
		case ta && !tb:
			return -1
		case tb && !ta:
			return 1
		}
		return 0
	})
	return out
}

// checkStoredShards marks as not stored (to be fetched again) every shard
// record whose pins the content store does not all keep: the user unpinned
// them in kubo, or switched between kubo and the embedded store, or a
// release was cut short. A follower never ACKs what it does not store.
func (d *Daemon) checkStoredShards(ctx context.Context) error {
	for _, rec := range d.shards.records {
		if !rec.Stored {
			continue
		}
		missing := ""
		for _, s := range rec.Pins {
			c, err := cid.Decode(s)
			if err != nil {
				missing = s
				break
			}
			ok, _, err := d.fetcher.Kept(ctx, c)
			if err != nil {
				return fmt.Errorf("check shard %d: %w", rec.ID, err)
			}
			if !ok {
				missing = s
				break
			}
		}
		if missing == "" {
			continue
		}
		rec.Stored, rec.Bytes, rec.Blocks = false, 0, 0
		if err := d.saveRecord(ctx, rec); err != nil {
			return err
		}
		d.log.Warn("shard no longer stored; fetching it again", "shard", rec.ID, "missing", missing)
	}
	return nil
}
