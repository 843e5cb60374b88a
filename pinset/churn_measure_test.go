package pinset

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"

	"github.com/pinfold/pinfold/store"
)

// TestChurnDiskMeasure measures disk use after churn on the daemons' own
// store (store.Open: the CRDT, its DAG and the index in one badger):
// add N pins, remove 0.9 N, add 0.5 N more, then value-log GC as the
// schedule runs it; against a fresh store loaded with the same live set
// (0.6 N pins). It prints both and their ratio (the bound is 2).
// A measurement, not a check: PINFOLD_CHURN_MEASURE=1 runs it,
// PINFOLD_CHURN_PINS sets N (default 1,000,000).
func TestChurnDiskMeasure(t *testing.T) {
	if os.Getenv("PINFOLD_CHURN_MEASURE") == "" {
		t.Skip("a measurement: PINFOLD_CHURN_MEASURE=1 runs it (PINFOLD_CHURN_PINS=N, default 1000000)")
	}
	n := uint64(1_000_000)
	if s := os.Getenv("PINFOLD_CHURN_PINS"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v < 1000 {
			t.Fatalf("PINFOLD_CHURN_PINS=%q: want a count of at least 1000", s)
		}
		n = v
	}
	ctx := context.Background()
	type step struct {
		add         bool
		first, last uint64
	}
	run := func(name string, steps []step) (before, after int64) {
		dir := t.TempDir()
		st, err := store.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		dagSvc := merkledag.NewDAGService(blockservice.New(st.Blocks, offline.Exchange(st.Blocks)))
		s, err := Open(ctx, testConfig(true), Deps{Datastore: st.Datastore, DAG: dagSvc, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close() // before the store
		rng := rand.New(rand.NewPCG(7, 8))
		const batch = 100_000
		for _, sp := range steps {
			for i := sp.first; i < sp.last; i += batch {
				m := min(batch, sp.last-i)
				if sp.add {
					if _, err := s.Add(ctx, makePins(i, m, 200, rng)); err != nil {
						t.Fatal(err)
					}
					continue
				}
				cids := make([]cid.Cid, 0, m)
				for j := i; j < i+m; j++ {
					cids = append(cids, testCID(j))
				}
				if _, err := s.Remove(ctx, cids); err != nil {
					t.Fatal(err)
				}
			}
		}
		live := s.Stats().Pins
		before = dirSize(t, dir)
		if err := st.CollectGarbage(ctx); err != nil {
			t.Fatal(err)
		}
		after, byExt := dirSizes(t, dir)
		t.Logf("%s: %d live pins; disk %d MiB, after value-log GC %d MiB (%.0f B per live pin): tables %d MiB, value log %d MiB, write-ahead logs %d MiB",
			name, live, before>>20, after>>20, float64(after)/float64(live), byExt[".sst"]>>20, byExt[".vlog"]>>20, byExt[".mem"]>>20)
		return before, after
	}
	_, churned := run("churned", []step{{true, 0, n}, {false, 0, n * 9 / 10}, {true, n, n * 3 / 2}})
	_, fresh := run("fresh", []step{{true, n * 9 / 10, n * 3 / 2}})
	t.Logf("churned / fresh = %.2f (bound 2)", float64(churned)/float64(fresh))
}

// dirSize is the disk space the files under dir take.
func dirSize(t *testing.T, dir string) int64 {
	total, _ := dirSizes(t, dir)
	return total
}

// dirSizes is dirSize with the space by file extension (badger's .sst
// tables, .vlog value log, .mem write-ahead logs).
func dirSizes(t *testing.T, dir string) (int64, map[string]int64) {
	var total int64
	byExt := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		size := info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			size = st.Blocks * 512 // allocated, as du counts: badger's open files are sparse
		}
		total += size
		byExt[filepath.Ext(path)] += size
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total, byExt
}
