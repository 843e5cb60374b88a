package content

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	ipld "github.com/ipfs/go-ipld-format"
)

// collectBatch is how many queued blocks collect deletes per turn of
// gcMu, so walks are not held up for long.
const collectBatch = 256

// Release forgets root and deletes each of its blocks that no kept pin
// references and that this Fetcher stored itself; it returns the bytes
// freed. Blocks that were in the store before a Fetch needed them (head
// and CRDT blocks, content imported here) are never deleted, and neither
// are blocks that a Fetch running at the same time is using: those are
// left queued and deleted by a later Release or Collect.
//
// A root that was never recorded (a Fetch cancelled half-way) is walked
// in the local store and the blocks it had fetched are deleted the same
// way. Releasing a root twice is harmless.
//
// Crash-safe: the references are taken back in transactions that also
// queue the blocks to delete, and the deletions are idempotent, so calling
// Release again (or Collect) after a crash finishes the job.
func (f *Fetcher) Release(ctx context.Context, root cid.Cid) (int64, error) {
	if !root.Defined() {
		return 0, fmt.Errorf("release: %w: undefined root CID", ErrInvalid)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, ok, err := loadPin(ctx, f.d, root)
	if err != nil {
		return 0, fmt.Errorf("release %s: %w", root, err)
	}
	if ok {
		if err := f.undo(ctx, root, rec); err != nil {
			return 0, fmt.Errorf("release %s: %w", root, err)
		}
	}
	if !ok || !rec.finished {
		if err := f.sweep(ctx, root); err != nil {
			return 0, fmt.Errorf("release %s: %w", root, err)
		}
	}
	freed, err := f.collect(ctx)
	if err != nil {
		return freed, fmt.Errorf("release %s: %w", root, err)
	}
	return freed, nil
}

// Collect deletes the blocks queued by earlier releases that are still
// unreferenced and not in use by a running Fetch; it returns the bytes
// freed. Release calls it; call it after a restart to finish deletions a
// crash interrupted.
func (f *Fetcher) Collect(ctx context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	freed, err := f.collect(ctx)
	if err != nil {
		return freed, fmt.Errorf("collect: %w", err)
	}
	return freed, nil
}

// undo takes back the references of root's applied chunks, last first,
// queueing blocks that reach zero and were claimed, then deletes the
// record. Each step is one transaction that also moves the record's
// applied count, so a crash anywhere leaves a record undo can resume.
// f.mu must be held.
func (f *Fetcher) undo(ctx context.Context, root cid.Cid, rec pinRecord) error {
	if rec.state != stateReleasing {
		rec.state = stateReleasing
		if err := f.update(ctx, func(txn ds.Txn) error { return txn.Put(ctx, pinKey(root), encodePin(rec)) }); err != nil {
			return err
		}
	}
	for j := rec.applied - 1; j >= 0; j-- {
		next := rec
		next.applied = j
		err := f.update(ctx, func(txn ds.Txn) error {
			part, err := loadList(ctx, txn, root, j)
			if err != nil {
				return err
			}
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
					continue // already gone; nothing to take back
				}
				r.count--
				if r.count > 0 {
					if err := txn.Put(ctx, refKey(e.mh), encodeRef(r)); err != nil {
						return err
					}
					continue
				}
				if err := txn.Delete(ctx, refKey(e.mh)); err != nil {
					return err
				}
				usage.Blocks--
				usage.Bytes -= r.size
				if err := f.queueIfClaimed(ctx, txn, e.mh, r.size); err != nil {
					return err
				}
			}
			if err := txn.Put(ctx, usageKey(), encodeStat(usage)); err != nil {
				return err
			}
			if err := txn.Delete(ctx, listKey(root, j)); err != nil {
				return err
			}
			if j == 0 {
				return txn.Delete(ctx, pinKey(root))
			}
			return txn.Put(ctx, pinKey(root), encodePin(next))
		})
		if err != nil {
			return err
		}
		rec = next
	}
	if rec.applied == 0 {
		return f.update(ctx, func(txn ds.Txn) error { return txn.Delete(ctx, pinKey(root)) })
	}
	return nil
}

// queueIfClaimed queues block k for deletion if this Fetcher stored it.
func (f *Fetcher) queueIfClaimed(ctx context.Context, txn ds.Txn, k string, size int64) error {
	claimed, err := txn.Has(ctx, claimKey(k))
	if err != nil || !claimed {
		return err
	}
	return txn.Put(ctx, gcKey(k), encodeSize(size))
}

// sweep walks root's DAG in the local store only (no network) and queues
// the claimed, unreferenced blocks it reaches, present or not (a claim
// whose block never arrived is dropped by collect). It cleans up after a
// Fetch that never finished. The walk is bounded by MaxBlocks; blocks
// that cannot be decoded are treated as leaves. f.mu must be held.
func (f *Fetcher) sweep(ctx context.Context, root cid.Cid) error {
	offline := merkledag.NewDAGService(blockservice.New(f.local, nil))
	visited := make(map[string]struct{})
	stack := []cid.Cid{root}
	var batch []blockEntry
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := f.update(ctx, func(txn ds.Txn) error {
			for _, e := range batch {
				if ok, err := txn.Has(ctx, refKey(e.mh)); err != nil || ok {
					if err != nil {
						return err
					}
					continue
				}
				if err := f.queueIfClaimed(ctx, txn, e.mh, e.size); err != nil {
					return err
				}
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	for len(stack) > 0 && int64(len(visited)) < f.cfg.MaxBlocks {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := visited[c.KeyString()]; ok {
			continue
		}
		visited[c.KeyString()] = struct{}{}
		if !isIdentityHash(c.Hash()) {
			size, err := f.local.GetSize(ctx, c)
			switch {
			case ipld.IsNotFound(err):
				batch = append(batch, blockEntry{mh: string(c.Hash())})
				continue
			case err != nil:
				return err
			}
			batch = append(batch, blockEntry{mh: string(c.Hash()), size: int64(size)})
			if len(batch) >= f.chunk {
				if err := flush(); err != nil {
					return err
				}
			}
			if c.Type() == cid.Raw {
				continue
			}
		}
		stack = append(stack, localLinks(ctx, offline, c, f.cfg.MaxLinks)...)
	}
	return flush()
}

// localLinks returns c's valid links, or none if c cannot be read or
// decoded from the local store.
func localLinks(ctx context.Context, offline ipld.DAGService, c cid.Cid, maxLinks int) (out []cid.Cid) {
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	var nd ipld.Node
	var err error
	if isIdentityHash(c.Hash()) {
		nd, err = decodeIdentity(c)
	} else {
		nd, err = offline.Get(ctx, c)
	}
	if err != nil {
		return nil
	}
	for i, l := range nd.Links() {
		if i >= maxLinks {
			break
		}
		if validLink(l.Cid) == nil {
			out = append(out, l.Cid)
		}
	}
	return out
}

// collect deletes queued blocks, collectBatch at a time under gcMu: a
// block referenced again is dropped from the queue and kept; a block a
// running walk registered is left queued; any other is deleted from the
// block store, then its queue entry and claim go. A crash between the two
// leaves an entry whose block is gone, which the next collect drops.
// f.mu must be held.
func (f *Fetcher) collect(ctx context.Context) (int64, error) {
	res, err := f.d.Query(ctx, query.Query{Prefix: gcPrefix()})
	if err != nil {
		return 0, err
	}
	defer res.Close()
	var freed int64
	var batch []blockEntry
	flush := func() error {
		n, err := f.collectBatch(ctx, batch)
		freed += n
		batch = batch[:0]
		return err
	}
	for r := range res.Next() {
		if r.Error != nil {
			return freed, r.Error
		}
		k, err := multihashFromKey(ds.NewKey(r.Key))
		if err != nil {
			return freed, err
		}
		size, err := decodeSize(r.Value)
		if err != nil {
			return freed, err
		}
		batch = append(batch, blockEntry{mh: k, size: size})
		if len(batch) >= collectBatch {
			if err := flush(); err != nil {
				return freed, err
			}
		}
	}
	return freed, flush()
}

func (f *Fetcher) collectBatch(ctx context.Context, batch []blockEntry) (int64, error) {
	f.gcMu.Lock()
	defer f.gcMu.Unlock()
	var freed int64
	for _, e := range batch {
		referenced, err := f.d.Has(ctx, refKey(e.mh))
		if err != nil {
			return freed, err
		}
		if referenced {
			if err := f.d.Delete(ctx, gcKey(e.mh)); err != nil {
				return freed, err
			}
			continue
		}
		if f.inUse(e.mh) {
			continue
		}
		c := cid.NewCidV1(cid.Raw, []byte(e.mh)) // the block store keys by multihash
		has, err := f.local.Has(ctx, c)
		if err != nil {
			return freed, err
		}
		if has {
			if err := f.local.DeleteBlock(ctx, c); err != nil && !errors.Is(err, ds.ErrNotFound) {
				return freed, fmt.Errorf("delete block %s: %w", c, err)
			}
			freed += e.size
		}
		err = f.update(ctx, func(txn ds.Txn) error {
			if err := txn.Delete(ctx, gcKey(e.mh)); err != nil {
				return err
			}
			return txn.Delete(ctx, claimKey(e.mh))
		})
		if err != nil {
			return freed, err
		}
	}
	return freed, nil
}

// inUse reports whether a running walk registered block k. gcMu must be
// held.
func (f *Fetcher) inUse(k string) bool {
	for w := range f.walks {
		if w.holds(k) {
			return true
		}
	}
	return false
}
