package pinset

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// TestSnapshotDuringImport takes snapshots while an import commits many
// deltas, and checks each against what its CRDT heads hold: a replica fed
// only those heads (in snapshot order, so it holds exactly their state)
// must count the same pins, bytes and shards.
func TestSnapshotDuringImport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dag := memDAG()
	wcfg := testConfig(true)
	wcfg.BatchKeys = 40
	w := openSet(t, wcfg, openBadger(t, t.TempDir()), dag)
	f := openSet(t, testConfig(false), openBadger(t, t.TempDir()), dag)

	rng := rand.New(rand.NewPCG(7, 8))
	pins := makePins(0, 4000, 9, rng)
	done := make(chan error, 1)
	go func() { // owned by this test: ends when the import does
		_, err := w.Add(ctx, pins)
		done <- err
	}()
	var snaps []Snapshot
	for importing := true; importing; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			importing = false
		default:
		}
		s, err := w.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(snaps); n == 0 || snaps[n-1].Pins != s.Pins {
			snaps = append(snaps, s)
		}
	}
	if len(snaps) < 5 {
		t.Fatalf("only %d distinct snapshots during the import; the test needs the import to be caught mid-way", len(snaps))
	}
	if last := snaps[len(snaps)-1]; last.Pins != int64(len(pins)) {
		t.Fatalf("last snapshot has %d pins, want %d", last.Pins, len(pins))
	}
	for i, s := range snaps {
		if len(s.Heads) == 0 && s.Pins > 0 {
			t.Fatalf("snapshot %d (%d pins) has no CRDT heads", i, s.Pins)
		}
		if err := f.WaitFor(ctx, s.Heads); err != nil {
			t.Fatal(err)
		}
		st := f.Stats()
		if st.Pins != s.Pins || st.Bytes != s.Bytes || !slices.Equal(st.Shards, s.Shards) {
			t.Fatalf("snapshot %d claims %d pins, %d bytes; its CRDT heads hold %d pins, %d bytes",
				i, s.Pins, s.Bytes, st.Pins, st.Bytes)
		}
	}
	t.Logf("%d snapshots checked, from %d to %d pins", len(snaps), snaps[0].Pins, snaps[len(snaps)-1].Pins)
}

// TestSnapshotPartialWalk: while a walk that stopped at a block it could
// not fetch leaves merged deltas no head covers, Snapshot refuses; once
// the walk resumes and completes, it answers again, holding back no walk.
func TestSnapshotPartialWalk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dag := memDAG()
	wcfg := testConfig(true)
	wcfg.BatchKeys = 100
	w := openSet(t, wcfg, openBadger(t, t.TempDir()), dag)
	rng := rand.New(rand.NewPCG(5, 6))
	if _, err := w.Add(ctx, makePins(0, 300, 4, rng)); err != nil {
		t.Fatal(err)
	}
	heads := w.Heads()
	blocks := chain(t, dag, heads[0])
	if len(blocks) != 3 {
		t.Fatalf("writer chain has %d blocks, want 3", len(blocks))
	}
	flaky := newFlaky(dag)
	fcfg := testConfig(false)
	fcfg.PrefetchBlocks = 0
	f := openSet(t, fcfg, openBadger(t, t.TempDir()), flaky)
	flaky.set(blocks[1], -1) // the walk merges the newest block, then stops
	if err := f.Feed(ctx, heads); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the walk to stop below the newest block", func() (bool, error) {
		_, err := f.Snapshot(ctx)
		if err != nil && !errors.Is(err, ErrPartial) {
			return false, err
		}
		return errors.Is(err, ErrPartial), nil
	})
	flaky.set(blocks[1], 0)
	eventually(t, 20*time.Second, "the walk to resume and complete", func() (bool, error) {
		s, err := f.Snapshot(ctx)
		if errors.Is(err, ErrPartial) {
			return false, nil
		}
		// A fresh replica may keep the block its walk resumed at as a
		// second head; the state is the same.
		return err == nil && s.Pins == 300 && slices.Contains(s.Heads, heads[0]), err
	})
}

// gateDAG blocks every Get until open is closed, and says when one
// started.
type gateDAG struct {
	ipld.DAGService
	asked chan struct{} // closed at the first Get
	once  sync.Once
	open  chan struct{}
}

func (d *gateDAG) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	d.once.Do(func() { close(d.asked) })
	select {
	case <-d.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return d.DAGService.Get(ctx, c)
}

func (d *gateDAG) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cs))
	go func() { // ends when every Get returned
		defer close(out)
		for _, c := range cs {
			nd, err := d.Get(ctx, c)
			out <- &ipld.NodeOption{Node: nd, Err: err}
		}
	}()
	return out
}

// TestSnapshotWaitsForWalk: a Snapshot waits for a walk in progress, and
// ends with its ctx if the walk does not end first; then it answers with
// the walk's result.
func TestSnapshotWaitsForWalk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dag := memDAG()
	w := openSet(t, testConfig(true), openBadger(t, t.TempDir()), dag)
	if _, err := w.Add(ctx, makePins(0, 50, 2, rand.New(rand.NewPCG(9, 10)))); err != nil {
		t.Fatal(err)
	}
	gate := &gateDAG{DAGService: dag, asked: make(chan struct{}), open: make(chan struct{})}
	fcfg := testConfig(false)
	fcfg.PrefetchBlocks = 0
	f := openSet(t, fcfg, openBadger(t, t.TempDir()), gate)
	if err := f.Feed(ctx, w.Heads()); err != nil {
		t.Fatal(err)
	}
	<-gate.asked // go-ds-crdt is walking the head
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := f.Snapshot(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Snapshot during a walk = %v, want the deadline", err)
	}
	f.feed.mu.Lock()
	holds := f.feed.holds
	f.feed.mu.Unlock()
	if holds != 0 {
		t.Fatalf("%d holds left after a Snapshot gave up", holds)
	}
	close(gate.open)
	s, err := f.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Pins != 50 || !slices.Equal(s.Heads, w.Heads()) {
		t.Fatalf("snapshot after the walk: %d pins at %v, want 50 at %v", s.Pins, s.Heads, w.Heads())
	}
}
