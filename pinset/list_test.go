package pinset

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
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

// TestListChunksInOrder checks ListChunks against List on both paths:
// every pin once, in List's order, from the start and after cursors
// (present, removed, last, past the end), with one to three workers and
// chunks small enough that a shard spans several.
func TestListChunksInOrder(t *testing.T) {
	ctx := context.Background()
	store := openBadger(t, t.TempDir())
	w := openSet(t, testConfig(true), store, memDAG())
	pins := makePins(0, 900, 5, rand.New(rand.NewPCG(5, 6)))
	if _, err := w.Add(ctx, pins); err != nil {
		t.Fatal(err)
	}
	gone := []cid.Cid{pins[10].CID, pins[500].CID}
	if _, err := w.Remove(ctx, gone); err != nil {
		t.Fatal(err)
	}
	var order []string // List's order, the reference
	if err := w.List(ctx, func(p Pin) error {
		order = append(order, Cursor{Shard: p.Shard, CID: p.CID}.String())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(order) != len(pins)-len(gone) {
		t.Fatalf("List: %d pins, want %d", len(order), len(pins)-len(gone))
	}
	// Lines of 1 KiB: 900 pins make several chunks per shard.
	pad := strings.Repeat(".", 1<<10)
	format := func(dst []byte, p Pin) []byte {
		dst = append(dst, Cursor{Shard: p.Shard, CID: p.CID}.String()...)
		dst = append(dst, ' ')
		dst = append(dst, pad...)
		return append(dst, '\n')
	}
	cursor := func(s string) *Cursor {
		c, err := ParseCursor(s)
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	last := order[len(order)-1]
	removed := pinsIndex(pins, gone[1])
	cases := []struct {
		name  string
		after *Cursor
		want  []string
	}{
		{"whole", nil, order},
		{"after the first", cursor(order[0]), order[1:]},
		{"after one in the middle", cursor(order[400]), order[401:]},
		{"after the last", cursor(last), nil},
		{"after a removed pin", &Cursor{Shard: removed.Shard, CID: removed.CID}, afterCursor(order, Cursor{Shard: removed.Shard, CID: removed.CID})},
		{"past every shard", &Cursor{Shard: 1 << 40, CID: pins[0].CID}, nil},
	}
	paths := map[string]ds.Datastore{"badger": store, "query": struct{ ds.Batching }{store}}
	for _, c := range cases {
		for name, store := range paths {
			for workers := 1; workers <= 3; workers++ {
				var got []string
				chunks := 0
				err := w.chunksIn(ctx, store, c.after, workers, format, func(b []byte) error {
					chunks++
					if len(b) == 0 || b[len(b)-1] != '\n' {
						t.Errorf("%s %s: a chunk does not end a line", c.name, name)
					}
					for line := range strings.Lines(string(b)) {
						got = append(got, strings.Fields(line)[0])
					}
					return nil
				})
				if err != nil {
					t.Fatalf("%s %s workers %d: %v", c.name, name, workers, err)
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("%s %s workers %d: listed %d pins, want %d (or not in order)", c.name, name, workers, len(got), len(c.want))
				}
				if len(c.want) > 600 && chunks < 3 {
					t.Errorf("%s %s: %d chunks; the test wants shards spanning several", c.name, name, chunks)
				}
			}
		}
	}

	// An error from emit, or the context's end, stops the listing and
	// comes back.
	stop := errors.New("stop here")
	calls := 0
	err := w.ListChunks(ctx, nil, 3, format, func([]byte) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("emit error: got %v after %d calls, want %v after 1", err, calls, stop)
	}
	cctx, cancel := context.WithCancel(ctx)
	err = w.ListChunks(cctx, nil, 2, format, func([]byte) error { cancel(); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled listing: %v, want context.Canceled", err)
	}
}

func pinsIndex(pins []Pin, c cid.Cid) Pin {
	for _, p := range pins {
		if p.CID.Equals(c) {
			return p
		}
	}
	panic("no such pin")
}

// afterCursor is the part of order (cursor strings in List's order) that
// comes after cur, by pin key.
func afterCursor(order []string, cur Cursor) []string {
	k := pinKey(cur.Shard, cur.CID)
	for i, s := range order {
		c, _ := ParseCursor(s)
		if pinKey(c.Shard, c.CID) > k {
			return order[i:]
		}
	}
	return nil
}
