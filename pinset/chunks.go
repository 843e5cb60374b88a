package pinset

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	badgerdb "github.com/dgraph-io/badger/v4"
	ds "github.com/ipfs/go-datastore"
	badger4 "github.com/ipfs/go-ds-badger4"
)

// Format appends one pin's line (or any encoding) to dst and returns it.
// ListChunks calls it from several goroutines at once.
type Format func(dst []byte, p Pin) []byte

// chunkSize is how many formatted bytes a worker gathers before it hands
// them on; chunksAhead is how many chunks of one shard may wait for the
// caller. Memory stays within workers × (chunksAhead+1) × chunkSize
// whatever the pinset's size.
const (
	chunkSize   = 256 << 10
	chunksAhead = 4
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize+4<<10); return &b }}

// ListChunks lists the pins in List's order (shard, then CID key) and
// hands them to emit formatted, a chunk of many pins at a time. With after
// set it starts after that pin, like ListAfter. On badger it reads one
// snapshot with up to workers goroutines, each listing and formatting a
// whole shard; emit is called from the calling goroutine, in order, and
// must not keep the slice. An error from emit stops the listing and is
// returned.
func (s *Set) ListChunks(ctx context.Context, after *Cursor, workers int, format Format, emit func([]byte) error) error {
	leave, err := s.enter()
	if err != nil {
		return err
	}
	defer leave()
	if workers < 1 {
		workers = 1
	}
	return s.chunksIn(ctx, s.store, after, workers, format, emit)
}

// chunksIn is ListChunks over store, the replica's datastore (a parameter
// so that the tests take both paths).
func (s *Set) chunksIn(ctx context.Context, store ds.Datastore, after *Cursor, workers int, format Format, emit func([]byte) error) error {
	base := s.crdtNS.ChildString("s").ChildString("k").String()
	if bd, ok := store.(*badger4.Datastore); ok {
		return s.chunksBadger(ctx, bd.DB, base, after, workers, format, emit)
	}
	// Any other datastore: one goroutine, the same chunks.
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := (*bp)[:0]
	var afterKey string
	if after != nil {
		afterKey = pinKey(after.Shard, after.CID)
	}
	err := s.listIn(ctx, store, "", func(p Pin) error {
		if after != nil && pinKey(p.Shard, p.CID) <= afterKey {
			return nil
		}
		buf = format(buf, p)
		if len(buf) < chunkSize {
			return nil
		}
		err := emit(buf)
		buf = buf[:0]
		return err
	})
	if err == nil && len(buf) > 0 {
		err = emit(buf)
	}
	*bp = buf[:0]
	return err
}

// chunkTask is one shard of a ListChunks on badger: its worker sends the
// formatted chunks on out and closes it, err set before.
type chunkTask struct {
	prefix []byte // <base>/<shard>/
	start  []byte // where to seek: prefix, or the cursor's key
	skip   []byte // a key not to list (the cursor's own), or nil
	out    chan *[]byte
	err    error
}

func (s *Set) chunksBadger(ctx context.Context, db *badgerdb.DB, base string, after *Cursor, workers int, format Format, emit func([]byte) error) error {
	txn := db.NewTransaction(false) // one snapshot for every worker
	defer txn.Discard()
	tasks, err := s.shardTasks(ctx, txn, base, after)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	defer func() {
		cancel()
		wg.Wait()
	}()
	for range min(workers, len(tasks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(tasks) {
					return
				}
				t := tasks[i]
				t.err = s.formatShard(ctx, txn, base, t, format)
				close(t.out)
			}
		}()
	}
	for _, t := range tasks {
		for bp := range t.out {
			err := emit(*bp)
			*bp = (*bp)[:0]
			chunkPool.Put(bp)
			if err != nil {
				return err
			}
		}
		if t.err != nil {
			return t.err
		}
	}
	return ctx.Err()
}

// shardTasks finds the shards present in txn's snapshot, one seek per
// shard, from after's shard on when after is set.
func (s *Set) shardTasks(ctx context.Context, txn *badgerdb.Txn, base string, after *Cursor) ([]*chunkTask, error) {
	opts := badgerdb.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = []byte(base + "/")
	it := txn.NewIterator(opts)
	defer it.Close()
	seek := opts.Prefix
	var afterKey []byte
	if after != nil {
		seek = []byte(base + shardPrefix(after.Shard) + "/")
		afterKey = []byte(base + pinKey(after.Shard, after.CID) + valueSuffix)
	}
	var tasks []*chunkTask
	for it.Seek(seek); it.Valid(); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		key := it.Item().Key()
		seg := len(base) + 1 + shardDigits
		if len(key) <= seg {
			it.Next() // not a pin's key: skipped, as List does
			continue
		}
		prefix := key[:seg:seg] // appending copies
		if _, err := parseShard(string(prefix[len(base)+1:])); err == nil && key[seg] == '/' {
			t := &chunkTask{prefix: append(prefix, '/'), out: make(chan *[]byte, chunksAhead)}
			t.start = t.prefix
			if afterKey != nil && bytes.HasPrefix(afterKey, t.prefix) {
				t.start, t.skip = afterKey, afterKey
			}
			tasks = append(tasks, t)
		}
		// Past every key of this segment ('/' < 0xff).
		it.Seek(append(prefix, 0xff))
	}
	return tasks, nil
}

// formatShard lists one shard of the snapshot and sends its pins,
// formatted, in chunks.
func (s *Set) formatShard(ctx context.Context, txn *badgerdb.Txn, base string, t *chunkTask, format Format) error {
	opts := badgerdb.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = t.prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	bp := chunkPool.Get().(*[]byte)
	send := func() error {
		select {
		case t.out <- bp:
			bp = chunkPool.Get().(*[]byte)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() { chunkPool.Put(bp) }()
	err := s.iterPins(ctx, it, base, t.start, t.skip, func(p Pin) error {
		*bp = format(*bp, p)
		if len(*bp) < chunkSize {
			return nil
		}
		return send()
	})
	if err == nil && len(*bp) > 0 {
		err = send()
	}
	if err != nil {
		return fmt.Errorf("list shard %s: %w", t.prefix[len(base):len(t.prefix)-1], err)
	}
	return nil
}

// iterPins walks it from start and calls fn with every live pin's record
// (keys ending in /v), skipping the key skip and malformed records, as
// List does.
func (s *Set) iterPins(ctx context.Context, it *badgerdb.Iterator, base string, start, skip []byte, fn func(Pin) error) error {
	var (
		key []byte
		p   Pin
	)
	decode := func(v []byte) (err error) {
		p, err = decodeEntry(string(key[len(base):len(key)-len(valueSuffix)]), v)
		return err
	}
	n := 0
	for it.Seek(start); it.Valid(); it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if s.isClosing() {
				return ErrClosed
			}
		}
		item := it.Item()
		if key = item.Key(); !bytes.HasSuffix(key, []byte(valueSuffix)) {
			continue // the element's priority
		}
		if skip != nil && bytes.Equal(key, skip) {
			continue
		}
		if err := item.Value(decode); err != nil {
			continue // malformed: skipped, as List does
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return ctx.Err()
}
