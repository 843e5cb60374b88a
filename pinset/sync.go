package pinset

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
)

// How this replica knows it has processed a head.
//
// go-ds-crdt v0.6.8 records every block it has merged under
// <crdt ns>/b/<multihash> ("processed") right after merging its delta. It
// walks a new head top-down, so a processed block does NOT imply that its
// ancestors are: a walk that stops at a block it cannot fetch, or that a
// crash cuts short, leaves processed blocks above unprocessed ones, and
// go-ds-crdt never comes back to them (handleBlock skips a processed head;
// its repair only walks down from the current heads). Its heads say even
// less: a fresh replica adopts broadcast heads before walking them.
//
// So a head h is "complete" when h and every block reachable from it are
// processed. walk checks that over local data only (processed blocks are
// in the local block store), and memoises the answer under
// <ns>/sync/d/<multihash> ("done"), so each block is looked at in full
// once. The blocks it reports as the frontier (unprocessed, reachable
// through processed ones) are where a stopped walk must resume; the
// feeder hands them to go-ds-crdt.
//
// The processed-key layout is go-ds-crdt's, not part of its API; a test
// pins it, so an upgrade that changes it fails loudly.

func (s *Set) processedKey(c cid.Cid) ds.Key {
	return s.crdtNS.ChildString("b").ChildString(dshelp.MultihashToDsKey(c.Hash()).String())
}

func (s *Set) doneKey(c cid.Cid) ds.Key {
	return s.ns.ChildString("sync").ChildString("d").ChildString(dshelp.MultihashToDsKey(c.Hash()).String())
}

func (s *Set) isProcessed(ctx context.Context, c cid.Cid) (bool, error) {
	return s.store.Has(ctx, s.processedKey(c))
}

func (s *Set) isDone(ctx context.Context, c cid.Cid) (bool, error) {
	return s.store.Has(ctx, s.doneKey(c))
}

func (s *Set) isHead(c cid.Cid) bool {
	return slices.Contains(s.Heads(), c)
}

// unmark forgets that c was processed, so go-ds-crdt walks it again when
// it is next handed over. Re-merging a delta changes nothing.
func (s *Set) unmark(ctx context.Context, c cid.Cid) error {
	if err := s.store.Delete(ctx, s.doneKey(c)); err != nil {
		return err
	}
	return s.store.Delete(ctx, s.processedKey(c))
}

type walkResult struct {
	processed bool      // the root itself is processed
	complete  bool      // the root and all its ancestors are processed
	frontier  []cid.Cid // unprocessed blocks reachable through processed ones (at most max)
}

// walk checks whether root is complete, reading only local data, and
// records "done" for every complete block it meets.
func (s *Set) walk(ctx context.Context, root cid.Cid, max int) (walkResult, error) {
	const (
		complete   = 1
		incomplete = 2
		open       = 3
	)
	type frame struct {
		c        cid.Cid
		links    []cid.Cid
		i        int
		expanded bool
	}
	var res walkResult
	state := make(map[cid.Cid]int8)
	stack := []frame{{c: root}}
	var batch ds.Batch // done marks, created at the first one
	defer func() {
		if batch != nil {
			// Marks found so far are true even if the walk failed later.
			_ = batch.Commit(ctx)
		}
	}()
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if !top.expanded {
			done, err := s.isDone(ctx, top.c)
			if err != nil {
				return res, err
			}
			if done {
				state[top.c] = complete
				if top.c == root {
					res.processed = true
				}
				stack = stack[:len(stack)-1]
				continue
			}
			proc, err := s.isProcessed(ctx, top.c)
			if err != nil {
				return res, err
			}
			if !proc {
				state[top.c] = incomplete
				if len(res.frontier) < max {
					res.frontier = append(res.frontier, top.c)
				}
				stack = stack[:len(stack)-1]
				continue
			}
			if top.c == root {
				res.processed = true
			}
			links, err := s.links(ctx, top.c)
			if err != nil {
				return res, err
			}
			top.links, top.expanded = links, true
			state[top.c] = open
		}
		if top.i < len(top.links) {
			child := top.links[top.i]
			top.i++
			if _, seen := state[child]; !seen {
				stack = append(stack, frame{c: child})
			}
			continue
		}
		st := int8(complete)
		for _, l := range top.links {
			if state[l] != complete {
				st = incomplete
				break
			}
		}
		state[top.c] = st
		if st == complete {
			if batch == nil {
				b, err := s.store.Batch(ctx)
				if err != nil {
					return res, err
				}
				batch = b
			}
			if err := batch.Put(ctx, s.doneKey(top.c), nil); err != nil {
				return res, err
			}
		}
		stack = stack[:len(stack)-1]
	}
	if batch != nil {
		b := batch
		batch = nil
		if err := b.Commit(ctx); err != nil {
			return res, err
		}
	}
	res.complete = state[root] == complete
	return res, nil
}

// linkCacheEntries bounds Set.linkCache: a CRDT block has one or a few
// links, so 64k entries take a few MiB and cover the DAG of 64k deltas.
const linkCacheEntries = 1 << 16

// links returns the parents a processed CRDT block links to. The block is
// in the local store (go-ds-crdt fetched it to process it).
func (s *Set) links(ctx context.Context, c cid.Cid) ([]cid.Cid, error) {
	if ls, ok := s.linkCache.Get(c); ok {
		return ls, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	nd, err := s.inner.Get(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("read CRDT block %s: %w", c, err)
	}
	ls := nd.Links()
	out := make([]cid.Cid, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.Cid)
	}
	s.linkCache.Add(c, out)
	return out, nil
}

func checkHeads(heads []cid.Cid) error {
	for _, h := range heads {
		if !IsHeadCID(h) {
			return fmt.Errorf("%w: %s", ErrInvalidHead, h)
		}
	}
	return nil
}

// CaughtUp reports whether this replica has processed every given CRDT
// head and all of its ancestors, i.e. its pinset contains every delta the
// state at those heads was made of (it may contain newer ones too). It
// reads local data only and never fetches.
func (s *Set) CaughtUp(ctx context.Context, heads []cid.Cid) (bool, error) {
	if err := checkHeads(heads); err != nil {
		return false, err
	}
	leave, err := s.enter()
	if err != nil {
		return false, err
	}
	defer leave()
	for _, h := range heads {
		res, err := s.walk(ctx, h, 1)
		if err != nil {
			return false, fmt.Errorf("check head %s: %w", h, err)
		}
		if !res.complete {
			return false, nil
		}
	}
	return true, nil
}

// Feed hands CRDT heads taken from a verified signed head to go-ds-crdt,
// so this replica fetches and processes them even if it missed (or never
// will see) their broadcast. The caller vouches for the heads: Feed is the
// only path besides the trusted topic by which heads enter. Heads already
// complete are ignored; the others are watched until complete, across
// restarts, and walks that stop are resumed with back-off. It fails with
// ErrBusy if MaxPending heads are already waiting.
func (s *Set) Feed(ctx context.Context, heads []cid.Cid) error {
	if err := checkHeads(heads); err != nil {
		return err
	}
	leave, err := s.enter()
	if err != nil {
		return err
	}
	defer leave()
	if err := s.feed.add(ctx, heads); err != nil {
		return fmt.Errorf("feed heads: %w", err)
	}
	return nil
}

// WaitFor feeds heads (see Feed) and waits until CaughtUp(heads) holds,
// ctx ends, or the set is closed. It wakes whenever go-ds-crdt finishes a
// walk, and every PollInterval in any case.
func (s *Set) WaitFor(ctx context.Context, heads []cid.Cid) error {
	if err := s.Feed(ctx, heads); err != nil {
		return err
	}
	tick := time.NewTicker(s.cfg.PollInterval)
	defer tick.Stop()
	for {
		progress := s.feed.progressCh()
		ok, err := s.CaughtUp(ctx, heads)
		if err != nil || ok {
			return err
		}
		select {
		case <-progress:
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("wait for heads: %w", ctx.Err())
		case <-s.closing:
			return ErrClosed
		}
	}
}
