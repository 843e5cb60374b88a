package pinset

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// TestAgainstModel applies random adds, re-adds, changes, moves between
// shards and removals (duplicates within one call included) at a writer,
// and checks after every step that the writer and a follower hold exactly
// what a map would. Seeds are printed; set them in seeds to replay.
func TestAgainstModel(t *testing.T) {
	base := uint64(time.Now().UnixNano())
	seeds := []uint64{1, 2, base}
	for _, seed := range seeds {
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, 99))
		ctx := context.Background()
		dag := memDAG()
		wcfg := testConfig(true)
		wcfg.BatchKeys = 1 + rng.IntN(40)
		w := openSet(t, wcfg, openBadger(t, t.TempDir()), dag)
		fstore := openBadger(t, t.TempDir())
		f := openSet(t, testConfig(false), fstore, dag)
		m := model{}
		universe := uint64(150) // CIDs are drawn from a small pool so ops collide
		for step := range 8 {
			var adds []Pin
			var rms []cid.Cid
			for range rng.IntN(80) {
				n := rng.Uint64N(universe)
				switch op := rng.IntN(10); {
				case op < 6: // add or change or move
					p := makePins(n, 1, 6, rng)[0]
					if rng.IntN(3) == 0 {
						if old, ok := m[cidKey(p.CID)]; ok {
							p = old // identical re-add
						}
					}
					adds = append(adds, p)
				default:
					rms = append(rms, testCID(n))
				}
			}
			if _, err := w.Add(ctx, adds); err != nil {
				t.Fatalf("seed %d step %d: Add: %v", seed, step, err)
			}
			m.add(adds)
			if _, err := w.Remove(ctx, rms); err != nil {
				t.Fatalf("seed %d step %d: Remove: %v", seed, step, err)
			}
			m.remove(rms)
			checkAgainst(t, w, m)
			if len(w.Heads()) == 0 {
				continue
			}
			if err := f.WaitFor(ctx, w.Heads()); err != nil {
				t.Fatalf("seed %d step %d: WaitFor: %v", seed, step, err)
			}
			checkAgainst(t, f, m)
		}
		// A clean reopen loads the aggregates instead of rebuilding them.
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if reason, err := f.idx.needsRebuild(ctx); err != nil || reason != "" {
			t.Fatalf("after a clean close the index needs a rebuild: %q, %v", reason, err)
		}
		f = openSet(t, testConfig(false), fstore, dag)
		checkAgainst(t, f, m)
	}
}
