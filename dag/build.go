package dag

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/ipfs/go-cid"
)

// State is the content a head links to, as plain values, for BuildHead.
type State struct {
	Pinset     Pinset     // Shards is set by BuildHead
	Shards     []Shard    // ascending by ID, unique
	Members    []Member   // ascending by peer ID, unique
	Allocation Allocation // Log is set by BuildHead
	Log        []LogEntry // nil or empty: no log (Allocation.Log is null)
}

// Built lists the CIDs of the blocks BuildHead stored (besides chunks).
type Built struct {
	Pinset     cid.Cid
	Shards     cid.Cid // List of ShardChunk
	Members    cid.Cid // List of MemberChunk
	Allocation cid.Cid
	Log        *cid.Cid // List of LogChunk; nil if the log is empty
}

// BuildHead stores every block of st and returns h with its Pinset,
// Members and Allocation links set, ready to be signed, together with the
// CIDs it stored. h's other fields are the caller's (version, cluster, seq,
// parent, time, trust) and are checked when the head is encoded.
func (s *Store) BuildHead(ctx context.Context, h Head, st State) (Head, Built, error) {
	var b Built
	var err error
	for i, e := range st.Log {
		if err := CheckLogEntryVersion(h.Version, e); err != nil {
			return Head{}, Built{}, fmt.Errorf("build head: log[%d]: %w", i, err)
		}
	}
	if b.Shards, err = s.PutShards(ctx, st.Shards); err != nil {
		return Head{}, Built{}, fmt.Errorf("build head: %w", err)
	}
	ps := st.Pinset
	ps.Shards = b.Shards
	if b.Pinset, err = s.PutPinset(ctx, ps); err != nil {
		return Head{}, Built{}, fmt.Errorf("build head: %w", err)
	}
	if b.Members, err = s.PutMembers(ctx, st.Members); err != nil {
		return Head{}, Built{}, fmt.Errorf("build head: %w", err)
	}
	alloc := st.Allocation
	alloc.Log = nil
	if len(st.Log) > 0 {
		lc, err := s.PutLog(ctx, st.Log)
		if err != nil {
			return Head{}, Built{}, fmt.Errorf("build head: %w", err)
		}
		b.Log = &lc
		alloc.Log = &lc
	}
	if b.Allocation, err = s.PutAllocation(ctx, alloc); err != nil {
		return Head{}, Built{}, fmt.Errorf("build head: %w", err)
	}
	h.Pinset, h.Members, h.Allocation = b.Pinset, b.Members, b.Allocation
	return h, b, nil
}

// DefaultMaxWalkBlocks bounds a walk when WalkOptions.MaxBlocks is 0. One
// head at the largest allowed lists has about 3*MaxListChunks+6 blocks.
const DefaultMaxWalkBlocks = 1 << 17

// WalkOptions bound a Walk.
type WalkOptions struct {
	// Parents is how many ancestors to walk besides the head itself
	// (0: only the head's own blocks).
	Parents int
	// MaxBlocks stops the walk with ErrTooLarge once this many distinct
	// blocks have been listed; 0 means DefaultMaxWalkBlocks.
	MaxBlocks int
}

// Walk lists the CID of every block reachable from the signed head c:
// the head, its pinset, shard list and chunks, member list and chunks,
// allocation, log list and chunks, then (if opt.Parents > 0) the same for
// its ancestors. Each CID is listed once, after its block was read and
// strictly decoded, so a completed walk means every block is present and
// valid. Not followed: the pinset's CRDT heads (go-ds-crdt's own DAG) and
// the head links inside ACKs. On error Walk yields it and stops.
func (s *Store) Walk(ctx context.Context, c cid.Cid, opt WalkOptions) iter.Seq2[cid.Cid, error] {
	limit := opt.MaxBlocks
	if limit <= 0 {
		limit = DefaultMaxWalkBlocks
	}
	return func(yield func(cid.Cid, error) bool) {
		w := &walker{s: s, seen: make(map[cid.Cid]struct{}), limit: limit, yield: yield}
		err := w.walk(ctx, c, opt.Parents)
		if err != nil && !w.stopped {
			yield(cid.Undef, fmt.Errorf("walk %s: %w", c, err))
		}
	}
}

type walker struct {
	s       *Store
	seen    map[cid.Cid]struct{}
	limit   int
	yield   func(cid.Cid, error) bool
	stopped bool
}

// errStop ends a walk whose consumer stopped iterating.
var errStop = errors.New("dag: walk stopped")

// emit lists c unless already listed; it reports whether c is new.
func (w *walker) emit(c cid.Cid) (bool, error) {
	if _, ok := w.seen[c]; ok {
		return false, nil
	}
	if len(w.seen) >= w.limit {
		return false, fmt.Errorf("%w: more than %d blocks", ErrTooLarge, w.limit)
	}
	w.seen[c] = struct{}{}
	if !w.yield(c, nil) {
		w.stopped = true
		return false, errStop
	}
	return true, nil
}

func (w *walker) walk(ctx context.Context, c cid.Cid, parents int) error {
	for {
		if _, ok := w.seen[c]; ok {
			return nil
		}
		h, err := getSigned(ctx, w.s, signedHeadType, signedHeadFields, HeadDomain, c)
		if err != nil {
			return err
		}
		if _, err := w.emit(c); err != nil {
			return err
		}
		if err := w.pinset(ctx, h.Head.Pinset); err != nil {
			return err
		}
		if err := walkList(ctx, w, memberKind, h.Head.Members); err != nil {
			return err
		}
		if err := w.allocation(ctx, h.Head.Allocation); err != nil {
			return err
		}
		if parents <= 0 || h.Head.Parent == nil {
			return nil
		}
		parents--
		c = *h.Head.Parent
	}
}

func (w *walker) pinset(ctx context.Context, c cid.Cid) error {
	if _, ok := w.seen[c]; ok {
		return nil
	}
	ps, err := getTyped(ctx, w.s, pinsetType, c)
	if err != nil {
		return err
	}
	if _, err := w.emit(c); err != nil {
		return err
	}
	return walkList(ctx, w, shardKind, ps.Shards)
}

func (w *walker) allocation(ctx context.Context, c cid.Cid) error {
	if _, ok := w.seen[c]; ok {
		return nil
	}
	a, err := getTyped(ctx, w.s, allocationType, c)
	if err != nil {
		return err
	}
	if _, err := w.emit(c); err != nil {
		return err
	}
	if a.Log == nil {
		return nil
	}
	return walkList(ctx, w, logKind, *a.Log)
}

func walkList[T any](ctx context.Context, w *walker, k *listKind[T], c cid.Cid) error {
	if _, ok := w.seen[c]; ok {
		return nil
	}
	var emitErr error
	err := readList(ctx, w.s, k, c, func(cc cid.Cid, _ []T) bool {
		_, emitErr = w.emit(cc)
		return emitErr == nil
	})
	if err == nil {
		err = emitErr
	}
	if err != nil {
		return err
	}
	_, err = w.emit(c)
	return err
}
