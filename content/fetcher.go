package content

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	ipld "github.com/ipfs/go-ipld-format"
)

// chunkEntries is how many blocks one block-list chunk holds, and so how
// many reference counts one transaction changes: well under badger's
// per-transaction limit with the small memtables store.Open sets.
const chunkEntries = 512

// conflictRetries bounds how often a transaction that lost a badger
// conflict is redone.
const conflictRetries = 16

// Fetcher fetches whole pin DAGs into the local block store and keeps, in
// the datastore, which blocks belong to which kept pin, so that releasing
// a pin deletes exactly the blocks nothing else needs. See the package
// documentation for the records and why they survive a crash at any point.
//
// Use one Fetcher per datastore (it serialises its own writes in memory).
// All methods are safe for concurrent use; Fetch calls run in parallel,
// recording and releasing take turns.
type Fetcher struct {
	net   ipld.DAGService
	local blockstore.Blockstore
	d     ds.TxnDatastore
	cfg   FetcherConfig

	// chunk is chunkEntries; tests lower it to reach more crash points.
	chunk int

	// mu serialises recording, releasing and collecting.
	mu sync.Mutex

	// gcMu orders block deletion against walks: walks register the
	// blocks they are about to read under gcMu.RLock, collect checks the
	// registrations and deletes under gcMu.Lock, so a walk never counts a
	// block that collect deletes afterwards. walks is guarded by gcMu.
	gcMu  sync.RWMutex
	walks map[*walker]struct{}

	movedBlocks atomic.Int64
	movedBytes  atomic.Int64
	renewals    atomic.Int64 // sessions replaced by the stall watchdog
}

// NewFetcher returns a Fetcher that reads through net (the node's DAG
// service: the local block store first, then bitswap, storing what it
// receives), checks and deletes blocks in local (the same block store
// net writes to), and keeps its records in d (the same badger datastore;
// its transactions make each record step atomic). Fields of cfg that are
// zero or negative take their defaults. It starts no goroutines and does
// no I/O.
func NewFetcher(net ipld.DAGService, local blockstore.Blockstore, d ds.TxnDatastore, cfg FetcherConfig) *Fetcher {
	return &Fetcher{
		net:   net,
		local: local,
		d:     d,
		cfg:   cfg.withDefaults(),
		chunk: chunkEntries,
		walks: make(map[*walker]struct{}),
	}
}

// Fetch walks root's DAG with up to Concurrency blocks in flight, fetching
// the blocks missing from the local store (each at most Attempts times,
// with backoff, each attempt bounded by AttemptTimeout; ctx ends it all),
// and calls progress (if not nil; calls are serialised, never concurrent)
// with the blocks and bytes of the DAG walked so far, present or fetched.
// Blocks already stored are not fetched again, so a fetch that was
// interrupted, even by kill -9, resumes where it stopped.
//
// When every block is present, Fetch records the pin: its block list and
// one more reference per block, in transactions of at most 512 blocks,
// resumable after a crash (see the package documentation). It returns the
// DAG's Stat: distinct blocks and their bytes. Fetching a root that is
// already kept returns at once.
//
// Every block is checked against its CID: bitswap hashes what it receives
// and drops mismatches; the walk refuses links with insecure hash
// functions. A block that cannot be decoded fails the fetch with
// ErrMalformed naming its CID; limits fail it with ErrTooLarge; a block
// nobody sends with ErrUnavailable.
func (f *Fetcher) Fetch(ctx context.Context, root cid.Cid, progress func(Stat)) (Stat, error) {
	if !root.Defined() {
		return Stat{}, fmt.Errorf("fetch: %w: undefined root CID", ErrInvalid)
	}
	rec, ok, err := loadPin(ctx, f.d, root)
	if err != nil {
		return Stat{}, fmt.Errorf("fetch %s: %w", root, err)
	}
	if ok && rec.state == stateKept {
		return rec.stat, nil
	}

	wctx, cancel := context.WithCancel(ctx)
	ss := newSessions(wctx, f.net)
	var last atomic.Int64 // unix nanoseconds of the last block walked
	last.Store(time.Now().UnixNano())
	var watch sync.WaitGroup
	watch.Go(func() { watchStalls(wctx, ss, f.cfg.StallTimeout, &last, &f.renewals) })
	defer func() {
		cancel() // ends the bitswap sessions and the watchdog
		watch.Wait()
	}()
	w := newWalker(f.cfg.limits(), func(ctx context.Context, c cid.Cid) (int64, []*ipld.Link, error) {
		size, links, err := f.fetchBlock(ctx, ss, c)
		if err == nil {
			last.Store(time.Now().UnixNano())
		}
		return size, links, err
	}, &f.gcMu, progress)
	f.register(w)
	defer f.unregister(w)

	st, list, err := w.run(wctx, root)
	if err != nil {
		return st, fmt.Errorf("fetch %s: %w", root, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(ctx, root, st, list); err != nil {
		return st, fmt.Errorf("fetch %s: record: %w", root, err)
	}
	return st, nil
}

func (f *Fetcher) register(w *walker) {
	f.gcMu.Lock()
	f.walks[w] = struct{}{}
	f.gcMu.Unlock()
}

func (f *Fetcher) unregister(w *walker) {
	f.gcMu.Lock()
	delete(f.walks, w)
	f.gcMu.Unlock()
}

// fetchBlock returns c's size and links, claiming c first when it is not
// stored yet (only claimed blocks are ever deleted) and retrying transient
// failures. A raw block already stored is read locally for its exact size:
// badger4's GetSize is only an estimate for values kept in its value log
// (it guesses the entry header length), which made a resumed fetch count a
// few bytes too many.
func (f *Fetcher) fetchBlock(ctx context.Context, ss *sessions, c cid.Cid) (int64, []*ipld.Link, error) {
	if c.Type() == cid.Raw {
		b, err := f.local.Get(ctx, c)
		switch {
		case err == nil:
			return int64(len(b.RawData())), nil, nil
		case !ipld.IsNotFound(err):
			return 0, nil, fmt.Errorf("block %s: %w", c, err)
		}
	}
	has, err := f.local.Has(ctx, c)
	if err != nil {
		return 0, nil, fmt.Errorf("block %s: %w", c, err)
	}
	if !has {
		if err := f.d.Put(ctx, claimKey(string(c.Hash())), []byte{recordVersion}); err != nil {
			return 0, nil, fmt.Errorf("claim block %s: %w", c, err)
		}
	}
	nd, err := f.getRetry(ctx, ss, c)
	if err != nil {
		return 0, nil, err
	}
	if !has {
		f.movedBlocks.Add(1)
		f.movedBytes.Add(int64(len(nd.RawData())))
	}
	return nodeInfo(c, nd)
}

// getRetry asks for c up to Attempts times, each for AttemptTimeout
// (across session renewals). A failure while c is stored locally is a
// decoding failure, which no retry cures.
func (f *Fetcher) getRetry(ctx context.Context, ss *sessions, c cid.Cid) (ipld.Node, error) {
	for attempt := 1; ; attempt++ {
		nd, err := ss.get(ctx, c, time.Now().Add(f.cfg.AttemptTimeout))
		if err == nil {
			return nd, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if has, herr := f.local.Has(ctx, c); herr == nil && has {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, c, err)
		}
		if attempt >= f.cfg.Attempts {
			return nil, fmt.Errorf("%w: %s: %d attempts, last: %v", ErrUnavailable, c, attempt, err)
		}
		t := time.NewTimer(f.cfg.backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// record counts list (root's distinct blocks, sorted) as referenced by
// root, one chunk per transaction, resuming a recording a crash cut short.
// f.mu must be held.
func (f *Fetcher) record(ctx context.Context, root cid.Cid, st Stat, list []blockEntry) error {
	rec, ok, err := loadPin(ctx, f.d, root)
	if err != nil {
		return err
	}
	if ok && rec.state == stateKept {
		return nil // a concurrent Fetch of the same root got here first
	}
	if ok && rec.state == stateReleasing {
		// A Release ran while we walked: finish it, then record afresh.
		if err := f.undo(ctx, root, rec); err != nil {
			return err
		}
		ok = false
	}
	chunks := (len(list) + f.chunk - 1) / f.chunk
	start := 0
	if ok {
		if rec.stat != st || rec.chunks != chunks {
			return fmt.Errorf("%w: pin %s was being recorded as %d blocks, %d bytes in %d chunks; the DAG has %d, %d in %d",
				ErrCorrupt, root, rec.stat.Blocks, rec.stat.Bytes, rec.chunks, st.Blocks, st.Bytes, chunks)
		}
		start = rec.applied
	}
	rec = pinRecord{state: stateRecording, stat: st, chunks: chunks, applied: start}
	if chunks == 0 { // an identity root: nothing stored
		rec.state, rec.finished = stateKept, true
		return f.update(ctx, func(txn ds.Txn) error { return txn.Put(ctx, pinKey(root), encodePin(rec)) })
	}
	for i := start; i < chunks; i++ {
		part := list[i*f.chunk : min((i+1)*f.chunk, len(list))]
		next := rec
		next.applied = i + 1
		if next.applied == chunks {
			next.state, next.finished = stateKept, true
		}
		err := f.update(ctx, func(txn ds.Txn) error {
			usage, err := loadUsage(ctx, txn)
			if err != nil {
				return err
			}
			for _, e := range part {
				r, ok, err := loadRef(ctx, txn, e.mh)
				if err != nil {
					return err
				}
				if !ok {
					r = ref{size: e.size}
					usage.Blocks++
					usage.Bytes += e.size
				}
				r.count++
				if err := txn.Put(ctx, refKey(e.mh), encodeRef(r)); err != nil {
					return err
				}
			}
			if err := txn.Put(ctx, listKey(root, i), encodeList(part)); err != nil {
				return err
			}
			if err := txn.Put(ctx, usageKey(), encodeStat(usage)); err != nil {
				return err
			}
			return txn.Put(ctx, pinKey(root), encodePin(next))
		})
		if err != nil {
			return err
		}
		rec = next
	}
	return nil
}

// update runs fn in a read-write transaction and commits it, redoing it
// when badger reports a conflict with a concurrent writer.
func (f *Fetcher) update(ctx context.Context, fn func(ds.Txn) error) error {
	for try := 0; ; try++ {
		txn, err := f.d.NewTransaction(ctx, false)
		if err != nil {
			return err
		}
		err = fn(txn)
		if err == nil {
			err = txn.Commit(ctx)
		}
		txn.Discard(ctx)
		if err == nil || !errors.Is(err, badger.ErrConflict) || try >= conflictRetries {
			return err
		}
	}
}

// Kept reports whether root was fetched completely and is recorded, with
// its Stat.
func (f *Fetcher) Kept(ctx context.Context, root cid.Cid) (bool, Stat, error) {
	rec, ok, err := loadPin(ctx, f.d, root)
	if err != nil || !ok || rec.state != stateKept {
		return false, Stat{}, err
	}
	return true, rec.stat, nil
}

// Usage returns the blocks and bytes of all kept pins' distinct blocks:
// what this node stores for its pins (blocks shared by pins count once).
// It reads one record, so it is cheap enough for status pages.
func (f *Fetcher) Usage(ctx context.Context) (Stat, error) {
	return loadUsage(ctx, f.d)
}

// Renewals returns how many times a Fetch made no progress for
// StallTimeout and started a new bitswap session, since NewFetcher.
func (f *Fetcher) Renewals() int64 { return f.renewals.Load() }

// Transferred returns the blocks and bytes Fetch had to get from peers
// (not found in the local store) since NewFetcher.
func (f *Fetcher) Transferred() Stat {
	return Stat{Blocks: f.movedBlocks.Load(), Bytes: f.movedBytes.Load()}
}

// PinState says where a pin record stands.
type PinState string

// Pin states, as Pins reports them.
const (
	PinRecording PinState = "recording" // fetched; its references are being recorded (interrupted if it stays so)
	PinKept      PinState = "kept"
	PinReleasing PinState = "releasing" // a Release started and did not finish: call Release again
)

// Pin is one pin record.
type Pin struct {
	Root  cid.Cid
	State PinState
	Stat  Stat
}

// Pins lists the pin records, kept or not, in key order. A pin left
// recording or releasing by a crash is finished by the next Fetch or
// Release of its root.
func (f *Fetcher) Pins(ctx context.Context) ([]Pin, error) {
	res, err := f.d.Query(ctx, query.Query{Prefix: pinPrefix()})
	if err != nil {
		return nil, fmt.Errorf("list pins: %w", err)
	}
	defer res.Close()
	var out []Pin
	for r := range res.Next() {
		if r.Error != nil {
			return nil, fmt.Errorf("list pins: %w", r.Error)
		}
		s := strings.TrimPrefix(r.Key, pinPrefix())
		c, err := cid.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("list pins: %w: key %s: %v", ErrCorrupt, r.Key, err)
		}
		rec, err := decodePin(r.Value)
		if err != nil {
			return nil, fmt.Errorf("list pins: pin %s: %w", c, err)
		}
		p := Pin{Root: c, State: PinKept, Stat: rec.stat}
		switch rec.state {
		case stateRecording:
			p.State = PinRecording
		case stateReleasing:
			p.State = PinReleasing
		}
		out = append(out, p)
	}
	return out, nil
}
