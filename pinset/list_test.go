package pinset

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
)

// TestListPathsAgree: List reads badger directly when the replica is on
// go-ds-badger4 and through the datastore's Query otherwise. Over the same
// data (pins added, moved to another shard, removed), both list exactly
// the model, whole and by shard.
func TestListPathsAgree(t *testing.T) {
	ctx := context.Background()
	store := openBadger(t, t.TempDir())
	w := openSet(t, testConfig(true), store, memDAG())
	m := model{}
	pins := makePins(0, 600, 4, rand.New(rand.NewPCG(3, 4)))
	if _, err := w.Add(ctx, pins); err != nil {
		t.Fatal(err)
	}
	m.add(pins)
	moved := append([]Pin(nil), pins[:50]...)
	for i := range moved {
		moved[i].Shard = 7
	}
	if _, err := w.Add(ctx, moved); err != nil {
		t.Fatal(err)
	}
	m.add(moved)
	gone := []cid.Cid{pins[100].CID, pins[200].CID, pins[300].CID}
	if _, err := w.Remove(ctx, gone); err != nil {
		t.Fatal(err)
	}
	m.remove(gone)

	// The same data through a datastore that is not *badger4.Datastore
	// takes the Query path.
	paths := map[string]ds.Datastore{"badger": store, "query": struct{ ds.Batching }{store}}

	want := func(shard int64) []string {
		var out []string
		for ck, p := range m {
			if shard < 0 || p.Shard == shard {
				out = append(out, ck)
			}
		}
		slices.Sort(out)
		return out
	}
	for _, shard := range []int64{-1, 0, 7} {
		for name, store := range paths {
			var got []string
			each := func(p Pin) error {
				if mp, ok := m[cidKey(p.CID)]; !ok || !pinsEqual(mp, p) {
					t.Errorf("%s: listed %+v, model has %+v (%v)", name, p, mp, ok)
				}
				got = append(got, cidKey(p.CID))
				return nil
			}
			prefix := ""
			if shard >= 0 {
				prefix = shardPrefix(shard)
			}
			if err := w.listIn(ctx, store, prefix, each); err != nil {
				t.Fatalf("%s shard %d: %v", name, shard, err)
			}
			slices.Sort(got)
			if w := want(shard); !slices.Equal(got, w) {
				t.Errorf("%s shard %d: listed %d pins, model has %d", name, shard, len(got), len(w))
			}
		}
	}
}
