package localcluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/localcluster"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/pinset"
)

// errBlockMissing: a fetch from a holder ended before some block came.
var errBlockMissing = errors.New("block missing")

// holderFetch is what fetchFromHolder walked.
type holderFetch struct {
	Blocks int64 // distinct stored blocks (by multihash; identity CIDs not counted)
	Bytes  int64
}

// fetchFromHolder fetches the whole DAG under each root from holder alone:
// a fresh libp2p node with an empty in-memory block store, connected to
// nothing but holder, asks for the blocks over bitswap, one DAG level at
// a time. It hashes every block it receives again itself (the block's
// CID prefix over its bytes must give the CID) and returns the distinct
// blocks and bytes of each DAG, the way content.DAGStat counts them. A
// block that does not come before ctx ends fails with errBlockMissing.
func fetchFromHolder(ctx context.Context, holder peer.AddrInfo, roots []cid.Cid) ([]holderFetch, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	cfg := p2p.DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Blockstore = blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	n, err := p2p.New(key, cfg, nil)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	if err := n.Connect(ctx, holder); err != nil {
		return nil, err
	}
	ses := blockservice.NewSession(ctx, n.BlockService())
	out := make([]holderFetch, 0, len(roots))
	for _, root := range roots {
		st, err := fetchDAG(ctx, ses, root)
		if err != nil {
			return out, fmt.Errorf("fetch %s from %s: %w", root, holder.ID, err)
		}
		out = append(out, st)
	}
	// Nobody else served anything: the node only ever knew the holder.
	for _, p := range n.Peers() {
		if p.ID != holder.ID {
			return out, fmt.Errorf("fetching node got connected to %s, not only to the holder %s", p.ID, holder.ID)
		}
	}
	return out, nil
}

// fetchDAG walks root level by level through ses, rehashing every block.
func fetchDAG(ctx context.Context, ses *blockservice.Session, root cid.Cid) (holderFetch, error) {
	var st holderFetch
	seen := map[string]bool{} // multihash + codec
	counted := map[string]bool{}
	level := []cid.Cid{root}
	for len(level) > 0 {
		var want []cid.Cid
		var next []cid.Cid
		for _, c := range level {
			if k := string(c.Bytes()); !seen[k] {
				seen[k] = true
				want = append(want, c)
			}
		}
		got := map[string]bool{}
		visit := func(blk blocks.Block) error {
			c := blk.Cid()
			sum, err := c.Prefix().Sum(blk.RawData())
			if err != nil {
				return fmt.Errorf("rehash %s: %w", c, err)
			}
			if !sum.Equals(c) {
				return fmt.Errorf("block %s hashes to %s", c, sum)
			}
			got[string(c.Bytes())] = true
			if h := c.Hash(); !counted[string(h)] {
				counted[string(h)] = true
				if !isIdentity(h) {
					st.Blocks++
					st.Bytes += int64(len(blk.RawData()))
				}
			}
			switch c.Type() { // raw and dag-pb are all a UnixFS pin holds
			case cid.Raw:
			case cid.DagProtobuf:
				nd, err := merkledag.DecodeProtobufBlock(blk)
				if err != nil {
					return fmt.Errorf("decode %s: %w", c, err)
				}
				for _, l := range nd.Links() {
					next = append(next, l.Cid)
				}
			default:
				return fmt.Errorf("block %s: codec %#x is not UnixFS", c, c.Type())
			}
			return nil
		}
		var ask []cid.Cid
		for _, c := range want {
			if !isIdentity(c.Hash()) {
				ask = append(ask, c)
				continue
			}
			dec, err := mh.Decode(c.Hash()) // the data is in the CID: nothing to fetch
			if err != nil {
				return st, fmt.Errorf("identity CID %s: %w", c, err)
			}
			blk, err := blocks.NewBlockWithCid(dec.Digest, c)
			if err != nil {
				return st, err
			}
			if err := visit(blk); err != nil {
				return st, err
			}
		}
		for blk := range ses.GetBlocks(ctx, ask) {
			if err := visit(blk); err != nil {
				return st, err
			}
		}
		for _, c := range want {
			if !got[string(c.Bytes())] {
				return st, fmt.Errorf("%w: %s (walked %d blocks, %d bytes): %v", errBlockMissing, c, st.Blocks, st.Bytes, ctx.Err())
			}
		}
		level = next
	}
	return st, nil
}

func isIdentity(h mh.Multihash) bool { return len(h) > 0 && h[0] == mh.IDENTITY }

// holderAddr is the address of the follower with peer ID id.
func holderAddr(t *testing.T, c *localcluster.Cluster, id string) (peer.AddrInfo, string) {
	t.Helper()
	for name, f := range c.Followers() {
		n := f.Daemon.Node()
		if n.ID().String() == id {
			return peer.AddrInfo{ID: n.ID(), Addrs: n.Addrs()}, name
		}
	}
	t.Fatalf("no running follower is %s", id)
	return peer.AddrInfo{}, ""
}

// holderShardPins lists a shard's pins as the curator's pinset (the one its
// heads sign) has them.
func holderShardPins(t *testing.T, ctx context.Context, c *localcluster.Cluster, shard int64) []pinset.Pin {
	t.Helper()
	var pins []pinset.Pin
	if err := c.Curator.Pins().ListShard(ctx, shard, func(p pinset.Pin) error { pins = append(pins, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(pins) == 0 {
		t.Fatalf("shard %d has no pins", shard)
	}
	return pins
}

// checkHolders fetches every pin of every shard back from each of its
// ACKed holders alone, checks every block's hash and that each pin's DAG
// has the size its signed pin record states. It also checks, once, that a
// follower that does not hold a shard fails the same check.
func checkHolders(t *testing.T, ctx context.Context, c *localcluster.Cluster, shards []curator.ShardInfo) {
	t.Helper()
	began := time.Now()
	var fetched, total int64
	checked, negative := 0, false
	for _, s := range shards {
		pins := holderShardPins(t, ctx, c, s.ID)
		roots := make([]cid.Cid, len(pins))
		for i, p := range pins {
			roots[i] = p.CID
		}
		holders := map[string]bool{}
		for _, h := range s.Holders {
			if h.State != "stored" || !h.Current {
				continue
			}
			holders[h.Peer] = true
			ai, name := holderAddr(t, c, h.Peer)
			fctx, cancel := context.WithTimeout(ctx, time.Minute)
			got, err := fetchFromHolder(fctx, ai, roots)
			cancel()
			if err != nil {
				t.Fatalf("shard %d from its holder %s: %v", s.ID, name, err)
			}
			for i, p := range pins {
				if got[i].Bytes != p.Size {
					t.Fatalf("shard %d pin %s from %s: DAG of %d bytes (%d blocks), signed size %d", s.ID, p.CID, name, got[i].Bytes, got[i].Blocks, p.Size)
				}
				fetched += got[i].Bytes
			}
			total += s.Bytes
			checked++
		}
		if len(holders) < s.Max {
			t.Fatalf("shard %d: %d ACKed holders to fetch from, want %d", s.ID, len(holders), s.Max)
		}
		// A follower that is not a holder of this shard lacks its blocks:
		// the same check fails, within a short deadline. Once is enough.
		for name, f := range c.Followers() {
			if negative {
				break
			}
			id := f.Daemon.Node().ID()
			if holders[id.String()] || holdsShard(f, s.ID) {
				continue
			}
			fctx, cancel := context.WithTimeout(ctx, time.Second)
			start := time.Now()
			_, err := fetchFromHolder(fctx, peer.AddrInfo{ID: id, Addrs: f.Daemon.Node().Addrs()}, roots[:1])
			cancel()
			if !errors.Is(err, errBlockMissing) {
				t.Fatalf("shard %d fetched from %s, which does not hold it: %v", s.ID, name, err)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Fatalf("a fetch from a non-holder took %s with a 1s deadline", took)
			}
			t.Logf("shard %d from %s, not a holder: %v", s.ID, name, err)
			negative = true
		}
	}
	if !negative {
		t.Fatal("no follower without a shard to check that a non-holder fails")
	}
	if fetched != total {
		t.Fatalf("fetched %d bytes in all, the shards' sizes add up to %d", fetched, total)
	}
	t.Logf("fetched %d (shard, holder) pairs back, %d bytes, every block rehashed, in %s", checked, fetched, time.Since(began).Round(time.Millisecond))
}

// holdsShard reports whether follower f reports shard id among its own.
func holdsShard(f *localcluster.Follower, id int64) bool {
	for _, r := range f.Daemon.Status().Shards {
		if r.ID == id {
			return true
		}
	}
	return false
}

// TestFetchFromHolderDetectsTampering checks the checker: a block whose
// bytes do not hash to its CID is refused (bitswap would drop it; the
// rehash catches a store that returned it anyway).
func TestFetchFromHolderDetectsTampering(t *testing.T) {
	ctx := context.Background()
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	good := []byte("the real bytes")
	h, err := mh.Sum(good, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	c := cid.NewCidV1(cid.Raw, h)
	ses := blockservice.NewSession(ctx, blockservice.New(tamperedStore{bs, c, []byte("other bytes")}, nil))
	if _, err := fetchDAG(ctx, ses, c); err == nil || !bytes.Contains([]byte(err.Error()), []byte("hashes to")) {
		t.Fatalf("tampered block accepted: %v", err)
	}
}

// tamperedStore returns bad instead of the bytes of c.
type tamperedStore struct {
	blockstore.Blockstore
	c   cid.Cid
	bad []byte
}

func (s tamperedStore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return c.Equals(s.c), nil
}

func (s tamperedStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if !c.Equals(s.c) {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	return blocks.NewBlockWithCid(s.bad, c)
}
