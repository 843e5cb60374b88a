package pinset

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
)

// BenchmarkPutHook is the index's work for one merged pin (go-ds-crdt's
// PutHook, on the merge path of every delta a follower syncs): check key
// and record, update the index entry and the shard's aggregates. The
// index writes to an in-memory datastore, so this is the hook's own CPU.
func BenchmarkPutHook(b *testing.B) {
	x := newIndex(dssync.MutexWrap(ds.NewMapDatastore()), ds.NewKey("/idx"), DefaultConfig().IndexFlushEntries, slog.New(slog.DiscardHandler))
	if err := x.loadBloom(context.Background()); err != nil {
		b.Fatal(err)
	}
	pins := makePins(0, uint64(b.N), 200, rand.New(rand.NewPCG(1, 2)))
	keys := make([]string, b.N)
	vals := make([][]byte, b.N)
	for i, p := range pins {
		keys[i] = pinKey(p.Shard, p.CID)
		v, err := EncodePin(p)
		if err != nil {
			b.Fatal(err)
		}
		vals[i] = v
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		x.putHook(keys[i], vals[i])
	}
	b.StopTimer()
	if x.malformed != 0 || x.applied != uint64(b.N) {
		b.Fatalf("%d malformed of %d applied", x.malformed, x.applied)
	}
}

// TestPutHookChecks: the hook indexes a record only under its own key,
// and counts anything else as malformed.
func TestPutHookChecks(t *testing.T) {
	ctx := context.Background()
	pins := makePins(0, 2, 200, rand.New(rand.NewPCG(1, 2)))
	good, err := EncodePin(pins[0])
	if err != nil {
		t.Fatal(err)
	}
	other, err := EncodePin(pins[1])
	if err != nil {
		t.Fatal(err)
	}
	key := pinKey(pins[0].Shard, pins[0].CID)
	tests := []struct {
		name      string
		key       string
		val       []byte
		malformed uint64
		indexed   bool
	}{
		{"record under its key", key, good, 0, true},
		{"another pin's record", key, other, 1, false},
		{"not a record", key, []byte{0xa0}, 1, false},
		{"key outside the layout", "/zz/" + pins[0].CID.String(), good, 1, false},
		{"CID not canonical", key[:len(key)-1] + "!", []byte{0xa0}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newIndex(dssync.MutexWrap(ds.NewMapDatastore()), ds.NewKey("/idx"), 1, slog.New(slog.DiscardHandler))
			if err := x.loadBloom(ctx); err != nil {
				t.Fatal(err)
			}
			x.putHook(tt.key, tt.val)
			if x.malformed != tt.malformed || x.applied != 1 {
				t.Fatalf("malformed %d applied %d, want %d and 1", x.malformed, x.applied, tt.malformed)
			}
			es, err := x.lookup(ctx, cidKey(pins[0].CID))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(es) == 1 && es[0].shard == pins[0].Shard && es[0].size == pins[0].Size; got != tt.indexed {
				t.Fatalf("indexed = %v (%v), want %v", got, es, tt.indexed)
			}
		})
	}
}
