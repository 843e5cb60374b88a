package pinset

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Snapshot is the replica at one moment: its CRDT heads and the counts of
// exactly the pins that the state at those heads holds. A signed head
// built from it states what its CRDT heads hold.
type Snapshot struct {
	Heads  []cid.Cid
	Pins   int64
	Bytes  int64        // sum of Pin.Size
	Shards []ShardStats // ascending shard; shards with no pins are absent
}

// snapshotRetries bounds how often Snapshot reads again when a merge it
// does not hold back (go-ds-crdt's own repair of a dirty DAG) changed the
// index while it read.
const snapshotRetries = 8

// Snapshot returns the CRDT heads and the counts they hold, read while no
// delta is being merged. go-ds-crdt merges a delta into the index before
// it moves its heads, so reading the two at different moments while an
// import or a walk runs gives counts that the heads do not hold. Snapshot
// therefore:
//
//   - waits for a local delta being committed (Add and Remove commit one
//     delta at a time; a long import is not waited for, only its current
//     delta);
//   - holds remote walks back: it waits until the walk in progress, if
//     any, has ended, and Next hands go-ds-crdt no new heads until it
//     returns.
//
// It waits at most until ctx ends. It fails with ErrPartial while a walk
// that stopped part-way has left merged deltas that no head covers (see
// feeder.review, which resumes such walks); it checks the few roots handed
// out since their last review over local data only.
func (s *Set) Snapshot(ctx context.Context) (Snapshot, error) {
	leave, err := s.enter()
	if err != nil {
		return Snapshot{}, err
	}
	defer leave()
	release, err := s.feed.hold(ctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	defer release()
	for _, root := range s.feed.begunRoots() {
		res, err := s.walk(ctx, root, 1)
		if err != nil {
			return Snapshot{}, fmt.Errorf("snapshot: check CRDT head %s: %w", root, err)
		}
		if res.processed && !res.complete {
			return Snapshot{}, fmt.Errorf("snapshot: %w: CRDT head %s is merged, blocks below it are not", ErrPartial, root)
		}
	}
	s.mergeMu.Lock()
	defer s.mergeMu.Unlock()
	for range snapshotRetries {
		before := s.idx.appliedCount()
		heads := s.Heads()
		pins, bytes, shards, _, applied := s.idx.snapshot()
		if applied == before {
			return Snapshot{Heads: heads, Pins: pins, Bytes: bytes, Shards: shards}, nil
		}
	}
	return Snapshot{}, fmt.Errorf("snapshot: the index kept changing while it was read (%d tries)", snapshotRetries)
}

// hold stops Next from handing out heads and waits until no walk is in
// progress. The returned func lets Next go on; call it exactly once.
func (f *feeder) hold(ctx context.Context) (func(), error) {
	f.mu.Lock()
	f.holds++
	for f.walking {
		progress := f.progress
		f.mu.Unlock()
		var err error
		select {
		case <-progress:
		case <-ctx.Done():
			err = ctx.Err()
		case <-f.ctx.Done():
			err = ErrClosed
		}
		f.mu.Lock()
		if err != nil {
			f.releaseLocked()
			f.mu.Unlock()
			return nil, err
		}
	}
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.releaseLocked()
		f.mu.Unlock()
	}, nil
}

func (f *feeder) releaseLocked() {
	f.holds--
	if f.holds == 0 && len(f.queue) > 0 {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// begunRoots returns the watched roots that may be merged in part. Most
// are complete and waiting for the next review; Snapshot checks each.
func (f *feeder) begunRoots() []cid.Cid {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]cid.Cid, 0, len(f.begun))
	for c := range f.begun {
		out = append(out, c)
	}
	return out
}

func (x *index) appliedCount() uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.applied
}
