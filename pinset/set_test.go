package pinset

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// TestWriterAndFollowerOffline drives a writer and a follower that share a
// block store and no network: the follower learns heads only through
// WaitFor, as it would from a signed head.
func TestWriterAndFollowerOffline(t *testing.T) {
	ctx := context.Background()
	dag := memDAG()
	wcfg := testConfig(true)
	wcfg.BatchKeys = 300
	w := openSet(t, wcfg, openBadger(t, t.TempDir()), dag)
	f := openSet(t, testConfig(false), openBadger(t, t.TempDir()), dag)

	rng := rand.New(rand.NewPCG(1, 2))
	m := model{}
	pins := makePins(0, 1000, 7, rng)
	n, err := w.Add(ctx, pins)
	if err != nil || n != len(pins) {
		t.Fatalf("Add = %d, %v; want %d", n, err, len(pins))
	}
	m.add(pins)
	checkAgainst(t, w, m)
	if len(w.Heads()) != 1 {
		t.Fatalf("writer heads %v, want one", w.Heads())
	}
	if err := f.WaitFor(ctx, w.Heads()); err != nil {
		t.Fatal(err)
	}
	checkAgainst(t, f, m)

	// Re-adding the same records writes nothing.
	if n, err := w.Add(ctx, pins[:100]); err != nil || n != 0 {
		t.Fatalf("re-Add = %d, %v; want 0", n, err)
	}
	// Move some pins to another shard, change some, remove some.
	moved := append([]Pin(nil), pins[100:150]...)
	for i := range moved {
		moved[i].Shard = 99
		moved[i].Size++
	}
	if n, err := w.Add(ctx, moved); err != nil || n != len(moved) {
		t.Fatalf("Add moved = %d, %v", n, err)
	}
	m.add(moved)
	var gone []cid.Cid
	for _, p := range pins[500:800] {
		gone = append(gone, p.CID)
	}
	gone = append(gone, testCID(1<<40)) // never pinned
	if n, err := w.Remove(ctx, gone); err != nil || n != 300 {
		t.Fatalf("Remove = %d, %v; want 300", n, err)
	}
	m.remove(gone)
	checkAgainst(t, w, m)
	if err := f.WaitFor(ctx, w.Heads()); err != nil {
		t.Fatal(err)
	}
	checkAgainst(t, f, m)
	if ok, err := f.CaughtUp(ctx, w.Heads()); err != nil || !ok {
		t.Fatalf("CaughtUp = %v, %v", ok, err)
	}
	if st := f.Stats(); st.Pending != 0 {
		t.Fatalf("follower still has %d pending heads", st.Pending)
	}

	// The follower refuses writes.
	if _, err := f.Add(ctx, pins[:1]); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("follower Add: %v, want ErrReadOnly", err)
	}
	if _, err := f.Remove(ctx, gone[:1]); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("follower Remove: %v, want ErrReadOnly", err)
	}
	if _, err := f.Get(ctx, gone[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get removed: %v, want ErrNotFound", err)
	}
}

// TestCaughtUpUnknownHead: a head nobody processed is not caught up, and
// CaughtUp never fetches it.
func TestCaughtUpUnknownHead(t *testing.T) {
	ctx := context.Background()
	f := openSet(t, testConfig(false), openBadger(t, t.TempDir()), memDAG())
	h := cid.NewCidV1(cid.DagProtobuf, testCID(5).Hash())
	ok, err := f.CaughtUp(ctx, []cid.Cid{h})
	if err != nil || ok {
		t.Fatalf("CaughtUp(unknown) = %v, %v; want false, nil", ok, err)
	}
	if _, err := f.CaughtUp(ctx, []cid.Cid{testCID(5)}); !errors.Is(err, ErrInvalidHead) {
		t.Fatalf("CaughtUp(raw CID) err = %v, want ErrInvalidHead", err)
	}
	if f.Stats().BlocksRequested != 0 {
		t.Fatalf("CaughtUp fetched blocks")
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := f.WaitFor(wctx, []cid.Cid{h}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor(unavailable) = %v, want deadline", err)
	}
}

// TestCloseDuringList: Close stops a listing in progress (whose callback
// calls back into the set) and is idempotent; later calls fail.
func TestCloseDuringList(t *testing.T) {
	ctx := context.Background()
	s := openSet(t, testConfig(true), openBadger(t, t.TempDir()), memDAG())
	pins := makePins(0, 500, 3, rand.New(rand.NewPCG(1, 1)))
	if _, err := s.Add(ctx, pins); err != nil {
		t.Fatal(err)
	}
	listing := make(chan struct{})
	closed := make(chan error, 1)
	n := 0
	err := s.List(ctx, func(p Pin) error {
		n++
		if n == 1 {
			close(listing)
			go func() { closed <- s.Close() }()
			return nil
		}
		<-s.closing // Close has begun
		// Nested call: must not deadlock with the pending Close.
		_, err := s.Get(ctx, p.CID)
		return err
	})
	<-listing
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("List during Close = %v after %d pins, want ErrClosed", err, n)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Add(ctx, pins[:1]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close = %v", err)
	}
	if _, err := s.Has(ctx, pins[0].CID); !errors.Is(err, ErrClosed) {
		t.Fatalf("Has after Close = %v", err)
	}
	if err := s.WaitFor(ctx, []cid.Cid{headCID(1)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitFor after Close = %v", err)
	}
}

// TestDeltaSize: Add and Remove commit before a delta outgrows
// MaxDeltaBytes, whatever the record sizes, so go-ds-crdt never has to
// split a batch itself and no block exceeds the limit.
func TestDeltaSize(t *testing.T) {
	ctx := context.Background()
	dag := memDAG()
	cfg := testConfig(true)
	cfg.MaxDeltaBytes = 64 << 10
	w := openSet(t, cfg, openBadger(t, t.TempDir()), dag)
	rng := rand.New(rand.NewPCG(8, 8))
	pins := makePins(0, 1500, 4, rng)
	for i := range pins {
		pins[i].Name = randString(rng, rng.IntN(MaxNameBytes/2))
		if i%3 == 0 {
			pins[i].Meta = map[string]string{"k": randString(rng, rng.IntN(MaxMetaValueBytes/2))}
		}
	}
	if _, err := w.Add(ctx, pins); err != nil {
		t.Fatal(err)
	}
	for i := range pins[:500] {
		pins[i].Shard++ // moves: a delete and a put each
	}
	if _, err := w.Add(ctx, pins[:500]); err != nil {
		t.Fatal(err)
	}
	var cs []cid.Cid
	for _, p := range pins[500:] {
		cs = append(cs, p.CID)
	}
	if _, err := w.Remove(ctx, cs); err != nil {
		t.Fatal(err)
	}
	blocks := chain(t, dag, w.Heads()[0])
	largest := 0
	for _, c := range blocks {
		nd, err := dag.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		largest = max(largest, len(nd.RawData()))
	}
	if largest > cfg.MaxDeltaBytes {
		t.Fatalf("largest block %d bytes, limit %d", largest, cfg.MaxDeltaBytes)
	}
	if largest < cfg.MaxDeltaBytes/2 {
		t.Fatalf("largest block %d bytes: batches are cut far below the %d limit", largest, cfg.MaxDeltaBytes)
	}
	t.Logf("%d blocks, largest %d bytes", len(blocks), largest)
}
