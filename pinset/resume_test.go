package pinset

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	ipld "github.com/ipfs/go-ipld-format"
)

// flakyDAG fails fetches of chosen CIDs, a number of times or forever.
type flakyDAG struct {
	ipld.DAGService
	mu   sync.Mutex
	fail map[cid.Cid]int // remaining failures; < 0 forever
}

var errFlaky = errors.New("flaky: block unavailable")

func newFlaky(inner ipld.DAGService) *flakyDAG {
	return &flakyDAG{DAGService: inner, fail: map[cid.Cid]int{}}
}

func (f *flakyDAG) set(c cid.Cid, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[c] = n
}

func (f *flakyDAG) fails(c cid.Cid) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.fail[c]
	if !ok || n == 0 {
		return false
	}
	if n > 0 {
		f.fail[c] = n - 1
	}
	return true
}

func (f *flakyDAG) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	if f.fails(c) {
		return nil, errFlaky
	}
	return f.DAGService.Get(ctx, c)
}

func (f *flakyDAG) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cs))
	go func() {
		defer close(out)
		for _, c := range cs {
			nd, err := f.Get(ctx, c)
			out <- &ipld.NodeOption{Node: nd, Err: err}
		}
	}()
	return out
}

// chain returns the CRDT blocks from head down to the root, following the
// first link (a single writer makes a linear chain).
func chain(t *testing.T, dag ipld.DAGService, head cid.Cid) []cid.Cid {
	t.Helper()
	var out []cid.Cid
	for c := head; ; {
		out = append(out, c)
		nd, err := dag.Get(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if len(nd.Links()) == 0 {
			return out
		}
		c = nd.Links()[0].Cid
	}
}

// TestResumeStoppedWalk: a walk that stops at a block it cannot fetch is
// resumed where it stopped, during the session or after a crash, and the
// follower ends with exactly the writer's pinset.
//
//	writer chain: b4 -> b3 -> b2 -> b1 (100 pins each)
//	"incremental": the follower had b1 before; "fresh": it had nothing.
//	b3 fails: the walk from b4 merges b4 and stops.
func TestResumeStoppedWalk(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fresh bool
		crash bool
	}{
		{"incremental", false, false},
		{"incremental after crash", false, true},
		{"fresh", true, false},
		{"fresh after crash", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dag := memDAG()
			wcfg := testConfig(true)
			wcfg.BatchKeys = 100
			w := openSet(t, wcfg, openBadger(t, t.TempDir()), dag)
			rng := rand.New(rand.NewPCG(3, 4))
			m := model{}
			add := func(n int) {
				ps := makePins(uint64(len(m)), uint64(n), 5, rng)
				if _, err := w.Add(ctx, ps); err != nil {
					t.Fatal(err)
				}
				m.add(ps)
			}

			flaky := newFlaky(dag)
			fstore := openBadger(t, t.TempDir())
			// No prefetching: it would absorb b3's failure before go-ds-crdt
			// asks for b3, and this test is about a walk that stops.
			fcfg := testConfig(false)
			fcfg.PrefetchBlocks = 0
			f := openSet(t, fcfg, fstore, flaky)
			add(100)
			if !tc.fresh {
				if err := f.WaitFor(ctx, w.Heads()); err != nil {
					t.Fatal(err)
				}
			}
			add(300)
			heads := w.Heads()
			blocks := chain(t, dag, heads[0])
			if len(blocks) != 4 {
				t.Fatalf("writer chain has %d blocks, want 4", len(blocks))
			}
			b4, b3 := blocks[0], blocks[1]

			if tc.crash {
				flaky.set(b3, -1)
				if err := f.Feed(ctx, heads); err != nil {
					t.Fatal(err)
				}
				eventually(t, 10*time.Second, "walk stops at b3", func() (bool, error) {
					p, err := f.isProcessed(ctx, b4)
					return p && f.Stats().FetchFailures > 0, err
				})
				f.crash()
				// Make the index wrong too: a rebuild must fix it.
				if err := fstore.Put(ctx, ds.NewKey("/pinset/idx/a/0000000000000001"), []byte{9, 9}); err != nil {
					t.Fatal(err)
				}
				flaky.set(b3, 0)
				f = openSet(t, fcfg, fstore, flaky)
				// b4's pending mark survived: the walk resumes by itself.
				if st := f.Stats(); st.Pending != 1 {
					t.Fatalf("after crash: %d pending heads, want 1", st.Pending)
				}
			} else {
				flaky.set(b3, 1)
				if err := f.Feed(ctx, heads); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, 20*time.Second, "follower catches up", func() (bool, error) {
				return f.CaughtUp(ctx, heads)
			})
			checkAgainst(t, f, m)
			if f.Stats().FetchFailures == 0 && !tc.crash {
				t.Fatalf("b3 never failed: the test did not stop a walk")
			}
			if tc.crash {
				// Resumed where it stopped: only b3's and b2's keys (and b1's,
				// if fresh) were merged after the restart, none of b4's.
				want := uint64(200)
				if tc.fresh {
					want = 300
				}
				if got := f.Stats().KeysApplied; got != want {
					t.Fatalf("after restart merged %d keys, want %d", got, want)
				}
			}
			// CaughtUp holds as soon as every block is merged; the walk
			// resumed at b3 left b3 as the head, and the feeder re-merges
			// b4 afterwards to make it the head again. Only a finished
			// watch list says that happened.
			eventually(t, 5*time.Second, "nothing pending", func() (bool, error) {
				return f.Stats().Pending == 0, nil
			})
			if !tc.fresh && !slices.Equal(f.Heads(), heads) {
				t.Fatalf("follower heads %v, writer heads %v", f.Heads(), heads)
			}
			if tc.fresh && !slices.Contains(f.Heads(), b4) {
				t.Fatalf("follower heads %v lack b4 %s", f.Heads(), b4)
			}
		})
	}
}

// TestProcessedKeyLayout pins the go-ds-crdt internals this package reads:
// where it records processed blocks.
func TestProcessedKeyLayout(t *testing.T) {
	ctx := context.Background()
	store := openBadger(t, t.TempDir())
	w := openSet(t, testConfig(true), store, memDAG())
	if _, err := w.Add(ctx, makePins(0, 3, 1, rand.New(rand.NewPCG(1, 1)))); err != nil {
		t.Fatal(err)
	}
	h := w.Heads()[0]
	want := fmt.Sprintf("/pinset/crdt/b/%s", w.processedKey(h).BaseNamespace())
	if got := w.processedKey(h).String(); got != want {
		t.Fatalf("processed key %s, want %s", got, want)
	}
	if ok, err := store.Has(ctx, w.processedKey(h)); err != nil || !ok {
		t.Fatalf("go-ds-crdt did not record %s under %s: %v", h, w.processedKey(h), err)
	}
}
