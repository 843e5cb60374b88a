package pinset

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	offline "github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	badger4 "github.com/ipfs/go-ds-badger4"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
)

// testConfig is DefaultConfig with short retries, for tests.
func testConfig(writer bool) Config {
	cfg := DefaultConfig()
	cfg.Writer = writer
	cfg.FetchTimeout = 5 * time.Second
	cfg.RetryMin = 20 * time.Millisecond
	cfg.RetryMax = 200 * time.Millisecond
	cfg.PollInterval = 100 * time.Millisecond
	return cfg
}

// testLogger logs warnings and errors to the test log (when -v).
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("PINSET_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// openBadger opens a badger4 datastore in dir with small caches (several
// run in one test process). Closed at test cleanup.
func openBadger(t testing.TB, dir string) *badger4.Datastore {
	t.Helper()
	opts := badger4.DefaultOptions
	opts.GcInterval = 0
	opts.Options = opts.Options.WithMemTableSize(8 << 20).WithBlockCacheSize(8 << 20).
		WithValueLogFileSize(64 << 20).WithNumMemtables(2).WithLoggingLevel(3) // warnings and up
	d, err := badger4.NewDatastore(dir, &opts)
	if err != nil {
		t.Fatalf("open badger %s: %v", dir, err)
	}
	return d
}

// memDAG is a DAG service over an in-memory block store with no network:
// replicas sharing one see each other's blocks at once.
func memDAG() ipld.DAGService {
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	return merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
}

// openSet opens a Set without a topic and closes it at cleanup.
func openSet(t testing.TB, cfg Config, store ds.Batching, dag ipld.DAGService) *Set {
	t.Helper()
	s, err := Open(context.Background(), cfg, Deps{Datastore: store, DAG: dag, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testCID returns a distinct raw CIDv1 for n.
func testCID(n uint64) cid.Cid {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	h, err := multihash.Sum(b[:], multihash.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

// makePins returns n pins numbered from first, spread over shards.
func makePins(first, n uint64, shards int64, rng *rand.Rand) []Pin {
	pins := make([]Pin, 0, n)
	for i := first; i < first+n; i++ {
		p := Pin{
			CID:   testCID(i),
			Name:  fmt.Sprintf("file-%07d.dat", i),
			Size:  int64(1 + rng.IntN(1<<20)),
			Shard: int64(rng.IntN(int(shards))),
			Added: time.UnixMilli(1_700_000_000_000 + int64(i)).UTC(),
		}
		if i%17 == 0 {
			p.Meta = map[string]string{"source": "crawl", "part": fmt.Sprint(i % 5)}
			p.ReplMin, p.ReplMax = 2, 4
		}
		pins = append(pins, p)
	}
	return pins
}

// eventually waits until cond holds, failing the test after d. It polls:
// the conditions are replica states that have no event to wait on.
func eventually(t testing.TB, d time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s", what, d)
		}
		<-tick.C
	}
}

// model is the reference implementation: a map from CID key to pin.
type model map[string]Pin

func (m model) add(ps []Pin) {
	for _, p := range ps {
		m[cidKey(p.CID)] = p
	}
}

func (m model) remove(cs []cid.Cid) {
	for _, c := range cs {
		delete(m, cidKey(c))
	}
}

// stats computes what Stats must report for m.
func (m model) stats() (pins, bytes int64, shards []ShardStats) {
	agg := map[int64]*ShardStats{}
	for _, p := range m {
		s := agg[p.Shard]
		if s == nil {
			s = &ShardStats{Shard: p.Shard}
			agg[p.Shard] = s
		}
		s.Pins++
		s.Bytes += p.Size
		pins++
		bytes += p.Size
	}
	shards = []ShardStats{}
	for _, s := range agg {
		shards = append(shards, *s)
	}
	sortShards(shards)
	return pins, bytes, shards
}

func sortShards(ss []ShardStats) {
	for i := 1; i < len(ss); i++ {
		for j := i; j > 0 && ss[j].Shard < ss[j-1].Shard; j-- {
			ss[j], ss[j-1] = ss[j-1], ss[j]
		}
	}
}

// checkAgainst verifies that s holds exactly m: listing, per-shard listing,
// Get and Stats.
func checkAgainst(t testing.TB, s *Set, m model) {
	t.Helper()
	ctx := context.Background()
	seen := 0
	lastKey := ""
	err := s.List(ctx, func(p Pin) error {
		k := pinKey(p.Shard, p.CID)
		if k <= lastKey {
			return fmt.Errorf("List out of order: %s after %s", k, lastKey)
		}
		lastKey = k
		want, ok := m[cidKey(p.CID)]
		if !ok {
			return fmt.Errorf("List has %s, model does not", p.CID)
		}
		if !pinsEqual(p, want) {
			return fmt.Errorf("List has %+v, model %+v", p, want)
		}
		seen++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(m) {
		t.Fatalf("List returned %d pins, model has %d", seen, len(m))
	}
	pins, bytes, shards := m.stats()
	st := s.Stats()
	if st.Pins != pins || st.Bytes != bytes {
		t.Fatalf("Stats pins=%d bytes=%d, model pins=%d bytes=%d", st.Pins, st.Bytes, pins, bytes)
	}
	if fmt.Sprint(st.Shards) != fmt.Sprint(shards) {
		t.Fatalf("Stats shards %v, model %v", st.Shards, shards)
	}
	for _, sh := range shards {
		n := int64(0)
		err := s.ListShard(ctx, sh.Shard, func(p Pin) error {
			if p.Shard != sh.Shard {
				return fmt.Errorf("ListShard(%d) returned shard %d", sh.Shard, p.Shard)
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != sh.Pins {
			t.Fatalf("ListShard(%d) returned %d pins, want %d", sh.Shard, n, sh.Pins)
		}
	}
	// Get a sample (all of them for small sets).
	i := 0
	for _, want := range m {
		if i++; i > 200 {
			break
		}
		got, err := s.Get(ctx, want.CID)
		if err != nil {
			t.Fatalf("Get %s: %v", want.CID, err)
		}
		if !pinsEqual(got, want) {
			t.Fatalf("Get %s = %+v, want %+v", want.CID, got, want)
		}
	}
}

func pinsEqual(a, b Pin) bool {
	if !a.CID.Equals(b.CID) || a.Name != b.Name || a.Size != b.Size || a.Shard != b.Shard ||
		a.ReplMin != b.ReplMin || a.ReplMax != b.ReplMax || !a.Added.Equal(b.Added) || len(a.Meta) != len(b.Meta) {
		return false
	}
	for k, v := range a.Meta {
		if b.Meta[k] != v {
			return false
		}
	}
	return true
}
