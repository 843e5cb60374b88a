package p2p

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// clusterDHTConfig is testConfig with a cluster DHT server on testPrefix
// (the other DHT off), bootstrapped to peers.
func clusterDHTConfig(t testing.TB, peers ...*running) Config {
	cfg := testConfig(t.TempDir())
	cfg.ClusterDHT.Mode = DHTServer
	cfg.ClusterDHT.ProtocolPrefix = testPrefix + "/cluster"
	for _, p := range peers {
		for _, a := range p.Addrs() {
			cfg.ClusterDHT.Bootstrap = append(cfg.ClusterDHT.Bootstrap, a.String())
		}
	}
	return cfg
}

// clusterDHTTrio starts a hub and two peers bootstrapped to it, all
// cluster DHT servers (keys from seed on), and waits until their routing
// tables hold each other.
func clusterDHTTrio(t *testing.T, seed uint64) (hub, x, y *running) {
	t.Helper()
	hub = start(t, "hub", testKey(t, seed), clusterDHTConfig(t))
	x = start(t, "x", testKey(t, seed+1), clusterDHTConfig(t, hub))
	y = start(t, "y", testKey(t, seed+2), clusterDHTConfig(t, hub))
	waitFor(t, "cluster DHT routing tables", func() bool {
		return hub.ClusterDHTPeers() == 2 && x.ClusterDHTPeers() >= 1 && y.ClusterDHTPeers() >= 1
	})
	return hub, x, y
}

func rawCID(t testing.TB, i int) cid.Cid {
	t.Helper()
	h, err := multihash.Sum(fmt.Appendf(nil, "root %d", i), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.DagProtobuf, h)
}

// TestProvideFindsHolder: a holder announces roots in the cluster DHT; a
// peer that never connected to it finds it by provider lookup, through
// the third peer, and a CID the holder does not announce finds nobody.
func TestProvideFindsHolder(t *testing.T) {
	t.Parallel()
	_, holder, asker := clusterDHTTrio(t, 201)
	if !holder.Providing() || holder.DHTEnabled() {
		t.Fatalf("Providing %v DHTEnabled %v; want the cluster DHT only", holder.Providing(), holder.DHTEnabled())
	}
	roots := []cid.Cid{rawCID(t, 1), rawCID(t, 2), rawCID(t, 3)}
	if err := holder.Provide(roots...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "roots announced", func() bool {
		st, err := holder.ProvideStatus(context.Background())
		return err == nil && len(st) == 1 && st[0].DHT == "cluster" && st[0].Provided >= 3 && st[0].Keys == 3
	})
	// Any CID version of the same multihash finds the record.
	v0 := cid.NewCidV1(cid.Raw, roots[1].Hash())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := asker.FindProviders(ctx, v0, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != holder.ID() {
		t.Fatalf("providers of %s: %v; want only %s", v0, got, holder.ID())
	}
	if len(got[0].Addrs) == 0 {
		t.Errorf("provider record of %s carries no addresses", holder.ID())
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	none, _ := asker.FindProviders(ctx2, rawCID(t, 99), 5)
	if len(none) != 0 {
		t.Errorf("providers of an unannounced CID: %v", none)
	}
	if err := holder.StopProviding(roots[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "key dropped", func() bool {
		st, err := holder.ProvideStatus(context.Background())
		return err == nil && st[0].Keys == 2
	})
}

// BenchmarkProvide100k announces 100,000 roots from one holder into a
// cluster DHT of eight servers on loopback and reports the time until
// every key was sent and the heap the holder grew by. With
// PINFOLD_PROVIDE_KEYS=N it announces N roots instead.
func BenchmarkProvide100k(b *testing.B) {
	keys := 100_000
	if s := os.Getenv("PINFOLD_PROVIDE_KEYS"); s != "" {
		if _, err := fmt.Sscan(s, &keys); err != nil || keys < 1 {
			b.Fatalf("PINFOLD_PROVIDE_KEYS=%q: want a positive count", s)
		}
	}
	first := start(b, "s0", testKey(b, 300), clusterDHTConfig(b))
	servers := []*running{first}
	for i := 1; i < 8; i++ {
		servers = append(servers, start(b, fmt.Sprintf("s%d", i), testKey(b, uint64(300+i)), clusterDHTConfig(b, first)))
	}
	roots := make([]cid.Cid, keys)
	for i := range roots {
		roots[i] = rawCID(b, i)
	}
	for i := 0; i < b.N; i++ {
		holder := start(b, "holder", testKey(b, uint64(400+i)), clusterDHTConfig(b, servers...))
		waitFor(b, "holder's routing table", func() bool { return holder.ClusterDHTPeers() == len(servers) })
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		begin := time.Now()
		if err := holder.Provide(roots...); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Minute)
		var provided int64
		for time.Now().Before(deadline) {
			st, err := holder.ProvideStatus(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if provided = st[0].Provided + st[0].Failed; provided >= int64(keys) {
				if st[0].Failed > 0 {
					b.Errorf("%d of %d keys failed", st[0].Failed, keys)
				}
				break
			}
			time.Sleep(100 * time.Millisecond) // polling a counter, not synchronising
		}
		took := time.Since(begin)
		runtime.ReadMemStats(&after)
		if provided < int64(keys) {
			b.Fatalf("%d of %d keys announced within 10 minutes", provided, keys)
		}
		b.ReportMetric(took.Seconds(), "s/provide-all")
		b.ReportMetric(float64(after.HeapAlloc)-float64(before.HeapAlloc), "heap-B")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc), "alloc-B")
		holder.stop(b)
	}
}
