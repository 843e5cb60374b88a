package p2p

import (
	"context"
	"fmt"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
)

// pairs counts fetchPair calls (benchmarks run sequentially).
var pairs uint64

// fetchPair starts a holder and a fetcher connected to it (the fetcher
// bootstraps from the holder), both with bitswap settings bs.
func fetchPair(b *testing.B, bs BitswapConfig) (holder, fetcher *running) {
	b.Helper()
	// The testing package calls a benchmark several times; each call gets
	// its own identities so no two live hosts share one.
	pairs++
	seed := 1000 * pairs
	cfgA := testConfig(b.TempDir())
	cfgA.Bitswap = bs
	holder = start(b, "holder", testKey(b, seed), cfgA)
	cfgC := testConfig(b.TempDir(), holder.Node)
	cfgC.Bitswap = bs
	fetcher = start(b, "fetcher", testKey(b, seed+1), cfgC)
	waitFor(b, "fetcher connected", func() bool { return fetcher.ConnectedTo(holder.ID()) })
	return holder, fetcher
}

// forget deletes cids from n's blockstore so the next fetch goes to the
// network.
func forget(b *testing.B, n *running, cids []cid.Cid) {
	b.Helper()
	for _, c := range cids {
		if err := n.cfg.Blockstore.DeleteBlock(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetchMany: 1,000 raw blocks of 1 KiB, fetched in one GetMany
// call over loopback, from a fetcher that deleted them since the last
// iteration. (With boxo's default 16 KiB target message size, such
// re-fetches lose a few dozen blocks most of the time and never recover
// them; see BitswapConfig.TargetMessageSize. The timeout turns that into a
// failure instead of a hang.)
func BenchmarkFetchMany(b *testing.B) {
	const blocks = 1000
	holder, fetcher := fetchPair(b, DefaultConfig().Bitswap)
	ctx := context.Background()
	var cids []cid.Cid
	for i := range blocks {
		data := make([]byte, 1024)
		copy(data, fmt.Sprintf("block %d", i))
		nd := merkledag.NewRawNode(data)
		if err := holder.DAGService().Add(ctx, nd); err != nil {
			b.Fatal(err)
		}
		cids = append(cids, nd.Cid())
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		forget(b, fetcher, cids)
		fetchCtx, cancel := context.WithTimeout(ctx, waitTimeout)
		b.StartTimer()
		got := 0
		for opt := range fetcher.DAGService().GetMany(fetchCtx, cids) {
			if opt.Err != nil {
				b.Fatal(opt.Err)
			}
			got++
		}
		cancel()
		if got != blocks {
			b.Fatalf("fetched %d blocks in %s, want %d", got, waitTimeout, blocks)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*blocks), "µs/block")
}

// BenchmarkFetchChain: a chain of 50 dag-pb nodes, each linking the next,
// walked one Get at a time as a DAG sync does when every block reveals
// the next CID. Boxo's 20 ms minimum between want messages to a peer sets
// the pace.
func BenchmarkFetchChain(b *testing.B) {
	const length = 50
	holder, fetcher := fetchPair(b, DefaultConfig().Bitswap)
	ctx := context.Background()
	var cids []cid.Cid
	var next *merkledag.ProtoNode
	for i := range length {
		nd := merkledag.NodeWithData(fmt.Appendf(nil, "link %d", i))
		if next != nil {
			if err := nd.AddNodeLink("next", next); err != nil {
				b.Fatal(err)
			}
		}
		if err := holder.DAGService().Add(ctx, nd); err != nil {
			b.Fatal(err)
		}
		cids = append(cids, nd.Cid())
		next = nd
	}
	root := cids[len(cids)-1]
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		forget(b, fetcher, cids)
		fetchCtx, cancel := context.WithTimeout(ctx, waitTimeout)
		b.StartTimer()
		walked := 0
		for c := root; ; walked++ {
			nd, err := fetcher.DAGService().Get(fetchCtx, c)
			if err != nil {
				b.Fatal(err)
			}
			links := nd.Links()
			if len(links) == 0 {
				break
			}
			c = links[0].Cid
		}
		cancel()
		if walked != length-1 {
			b.Fatalf("walked %d links, want %d", walked, length-1)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*length), "ms/block")
}
