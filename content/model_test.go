package content

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4/options"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	badger "github.com/ipfs/go-ds-badger4"
)

// modelPins builds n folders on p's source from a pool of shared files,
// each with one file of its own so no two roots are equal.
func modelPins(t *testing.T, p *pipe, rng *rand.Rand, n int) []cid.Cid {
	t.Helper()
	dir := t.TempDir()
	const pool = 6
	var roots []cid.Cid
	for i := range n {
		pin := filepath.Join(dir, fmt.Sprintf("pin-%d", i))
		for _, j := range rng.Perm(pool)[:1+rng.IntN(3)] {
			writeRandFile(t, filepath.Join(pin, fmt.Sprintf("shared-%d.bin", j)), uint64(100+j), 2<<10+j*3<<10)
		}
		writeRandFile(t, filepath.Join(pin, "own.bin"), uint64(200+i), 3<<10)
		roots = append(roots, importOne(t, p.srcDAG(), pin, 1<<10).CID)
	}
	return roots
}

// model is the reference: which pins are kept, which were left half
// fetched, and the block sets of each pin.
type model struct {
	pins    []cid.Cid
	sets    []map[string]int64
	kept    []bool
	dirty   []bool
	foreign map[string]bool
}

// check compares the Fetcher's state with the model.
func (m *model) check(t *testing.T, f *Fetcher, bs blockstore.Blockstore, d ds.Datastore, step string) {
	t.Helper()
	ctx := context.Background()
	union := map[string]int64{}
	refs := map[string]int64{}
	for i, set := range m.sets {
		ok, st, err := f.Kept(ctx, m.pins[i])
		if err != nil {
			t.Fatal(err)
		}
		if ok != m.kept[i] {
			t.Fatalf("%s: pin %d kept = %v; model says %v", step, i, ok, m.kept[i])
		}
		if !m.kept[i] {
			continue
		}
		if st != sumSizes(set) {
			t.Fatalf("%s: pin %d stat %+v; want %+v", step, i, st, sumSizes(set))
		}
		for k, n := range set {
			union[k] = n
			refs[k]++
			if !present(t, bs, k) {
				t.Fatalf("%s: block %x of kept pin %d missing", step, k, i)
			}
		}
	}
	if u, err := f.Usage(ctx); err != nil || u != sumSizes(union) {
		t.Fatalf("%s: Usage = %+v, %v; want %+v", step, u, err, sumSizes(union))
	}
	for k, want := range refs {
		r, ok, err := loadRef(ctx, d, k)
		if err != nil || !ok || r.count != want {
			t.Fatalf("%s: ref of %x = %+v, %v, %v; want count %d", step, k, r, ok, err, want)
		}
	}
	if n := len(keysUnder(t, d, nsRoot+"/ref/")); n != len(refs) {
		t.Fatalf("%s: %d reference counts stored; want %d", step, n, len(refs))
	}
	for i, set := range m.sets {
		for k := range set {
			if m.foreign[k] {
				if !present(t, bs, k) {
					t.Fatalf("%s: foreign block %x deleted", step, k)
				}
				continue
			}
			if _, ok := union[k]; ok || m.inDirty(k) {
				continue
			}
			if present(t, bs, k) {
				t.Fatalf("%s: block %x of released pin %d still present", step, k, i)
			}
		}
	}
}

func (m *model) inDirty(k string) bool {
	for i, set := range m.sets {
		if _, ok := set[k]; ok && m.dirty[i] {
			return true
		}
	}
	return false
}

// TestFetcherAgainstModel runs random Fetch, cancelled Fetch and Release
// sequences over pins sharing blocks (and one holding foreign blocks),
// checking the records, usage and the block store against a reference
// model after every step.
func TestFetcherAgainstModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Logf("seed %d", seed)
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(seed, 99))
			p := newPipe(t)
			m := &model{foreign: map[string]bool{}}
			m.pins = modelPins(t, p, rng, 5)
			fpin, head, crdt := foreignBlocks(t, p)
			m.pins = append(m.pins, fpin)
			m.foreign[string(head.Cid().Hash())] = true
			m.foreign[string(crdt.Cid().Hash())] = true
			for _, c := range m.pins {
				m.sets = append(m.sets, dagBlocks(t, p.srcDAG(), c))
			}
			m.kept = make([]bool, len(m.pins))
			m.dirty = make([]bool, len(m.pins))
			f := NewFetcher(p.net, p.dst.Blocks, p.dst.Datastore, fastConfig())
			f.chunk = 3
			for step := range 30 {
				i := rng.IntN(len(m.pins))
				var what string
				switch r := rng.IntN(100); {
				case r < 45:
					what = "fetch"
					if _, err := f.Fetch(ctx, m.pins[i], nil); err != nil {
						t.Fatal(err)
					}
					m.kept[i], m.dirty[i] = true, false
				case r < 60:
					stop := int64(1 + rng.IntN(6))
					what = fmt.Sprintf("fetch cancelled after %d blocks", stop)
					cctx, cancel := context.WithCancel(ctx)
					_, err := f.Fetch(cctx, m.pins[i], func(s Stat) {
						if s.Blocks >= stop {
							cancel()
						}
					})
					cancel()
					switch {
					case err == nil:
						m.kept[i], m.dirty[i] = true, false
					case errors.Is(err, context.Canceled):
						m.dirty[i] = m.dirty[i] || !m.kept[i]
					default:
						t.Fatal(err)
					}
				default:
					what = "release"
					if _, err := f.Release(ctx, m.pins[i]); err != nil {
						t.Fatal(err)
					}
					m.kept[i], m.dirty[i] = false, false
				}
				m.check(t, f, p.dst.Blocks, p.dst.Datastore, fmt.Sprintf("step %d (%s pin %d)", step, what, i))
			}
		})
	}
}

// crashDS fails every write once its budget of writes is spent, like a
// process killed at that point: what was committed stays, nothing after.
type crashDS struct {
	*badger.Datastore
	left *atomic.Int64
}

var errCrash = errors.New("crashed")

func (c *crashDS) step() error {
	if c.left.Add(-1) < 0 {
		return errCrash
	}
	return nil
}

func (c *crashDS) Put(ctx context.Context, k ds.Key, v []byte) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.Datastore.Put(ctx, k, v)
}

func (c *crashDS) Delete(ctx context.Context, k ds.Key) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.Datastore.Delete(ctx, k)
}

func (c *crashDS) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := c.Datastore.Batch(ctx)
	return &crashBatch{Batch: b, c: c}, err
}

func (c *crashDS) NewTransaction(ctx context.Context, ro bool) (ds.Txn, error) {
	txn, err := c.Datastore.NewTransaction(ctx, ro)
	return &crashTxn{Txn: txn, c: c}, err
}

type crashBatch struct {
	ds.Batch
	c *crashDS
}

func (b *crashBatch) Commit(ctx context.Context) error {
	if err := b.c.step(); err != nil {
		return err
	}
	return b.Batch.Commit(ctx)
}

type crashTxn struct {
	ds.Txn
	c *crashDS
}

func (t *crashTxn) Commit(ctx context.Context) error {
	if err := t.c.step(); err != nil {
		return err
	}
	return t.Txn.Commit(ctx)
}

// memBadger opens an in-memory badger4 datastore.
func memBadger(t *testing.T) *badger.Datastore {
	t.Helper()
	opts := badger.DefaultOptions
	opts.Options = opts.Options.WithInMemory(true).WithLogger(nil).WithMemTableSize(16 << 20).
		WithBlockCacheSize(0).WithIndexCacheSize(0).WithCompression(options.None)
	d, err := badger.NewDatastore("", &opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCrashAtEveryPoint interrupts "Fetch(b); Release(a)" (a and b share
// blocks; a is kept; foreign blocks are present) at every write it makes,
// restarts with a new Fetcher, and either redoes both or abandons b. The
// state must be exact afterwards: every kept pin complete, usage and
// reference counts right, released blocks gone, foreign blocks there.
func TestCrashAtEveryPoint(t *testing.T) {
	ctx := context.Background()
	src := newPipe(t) // only its source is used
	dir := t.TempDir()
	writeRandFile(t, filepath.Join(dir, "a", "shared.bin"), 1, 3<<10)
	writeRandFile(t, filepath.Join(dir, "b", "shared.bin"), 1, 3<<10)
	writeRandFile(t, filepath.Join(dir, "a", "own.bin"), 2, 2<<10)
	writeRandFile(t, filepath.Join(dir, "b", "own.bin"), 3, 3<<10)
	a := importOne(t, src.srcDAG(), filepath.Join(dir, "a"), 1<<10).CID
	b := importOne(t, src.srcDAG(), filepath.Join(dir, "b"), 1<<10).CID
	fpin, head, crdt := foreignBlocks(t, src)
	_ = fpin

	// run sets up a fresh destination with a kept and the foreign blocks,
	// runs the interrupted sequence with a budget of writes, restarts and
	// recovers; it returns how many writes the sequence used.
	run := func(t *testing.T, budget int64, abandon bool) int64 {
		raw := memBadger(t)
		defer raw.Close()
		rawBS := blockstore.NewBlockstore(raw)
		for _, blk := range []interface{ Cid() cid.Cid }{head, crdt} {
			b, _ := src.src.Get(ctx, blk.Cid())
			if err := rawBS.Put(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		ex := newCountingExchange(src.src)
		f0 := NewFetcher(merkledag.NewDAGService(blockservice.New(rawBS, ex)), rawBS, raw, fastConfig())
		f0.chunk = 2
		if _, err := f0.Fetch(ctx, a, nil); err != nil {
			t.Fatal(err)
		}

		left := &atomic.Int64{}
		left.Store(budget)
		cds := &crashDS{Datastore: raw, left: left}
		cbs := blockstore.NewBlockstore(cds)
		f1 := NewFetcher(merkledag.NewDAGService(blockservice.New(cbs, ex)), cbs, cds, fastConfig())
		f1.chunk = 2
		_, errF := f1.Fetch(ctx, b, nil)
		var errR error
		if errF == nil {
			_, errR = f1.Release(ctx, a)
		}
		used := budget - max(left.Load(), 0)
		if budget < 1<<40 && errF == nil && errR == nil {
			t.Fatalf("budget %d: sequence finished without crashing", budget)
		}

		// Restart.
		f2 := NewFetcher(merkledag.NewDAGService(blockservice.New(rawBS, ex)), rawBS, raw, fastConfig())
		f2.chunk = 2
		m := &model{pins: []cid.Cid{a, b}, kept: []bool{false, !abandon}, dirty: []bool{false, false},
			foreign: map[string]bool{string(head.Cid().Hash()): true, string(crdt.Cid().Hash()): true}}
		m.sets = []map[string]int64{dagBlocks(t, src.srcDAG(), a), dagBlocks(t, src.srcDAG(), b)}
		if abandon {
			if _, err := f2.Release(ctx, b); err != nil {
				t.Fatal(err)
			}
		} else if _, err := f2.Fetch(ctx, b, nil); err != nil {
			t.Fatalf("budget %d: Fetch after restart: %v", budget, err)
		}
		if _, err := f2.Release(ctx, a); err != nil {
			t.Fatalf("budget %d: Release after restart: %v", budget, err)
		}
		m.check(t, f2, rawBS, raw, fmt.Sprintf("budget %d abandon %v", budget, abandon))
		for _, pfx := range []string{"/gc/", "/pin/" + a.String(), "/list/" + a.String()} {
			if k := keysUnder(t, raw, nsRoot+pfx); len(k) != 0 {
				t.Fatalf("budget %d: keys left under %s: %v", budget, pfx, k)
			}
		}
		if abandon {
			if k := keysUnder(t, raw, nsRoot+"/claim/"); len(k) != 0 {
				t.Fatalf("budget %d: %d claims left after releasing everything", budget, len(k))
			}
		}
		return used
	}
	total := run(t, 1<<50, false)
	t.Logf("the sequence makes %d writes; crashing at each", total)
	if total < 10 {
		t.Fatalf("only %d writes: the test does not exercise much", total)
	}
	var points []int64
	for k := range total {
		points = append(points, k)
	}
	sort.Slice(points, func(i, j int) bool { return points[i] < points[j] })
	for _, k := range points {
		run(t, k, false)
		run(t, k, true)
	}
}
