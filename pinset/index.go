package pinset

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// The local index lives beside the CRDT, never in it: each replica derives
// it from its own CRDT state.
//
//	<ns>/idx/c/<cid key>   -> (shard, size) pairs, ascending shard: where a CID is pinned
//	<ns>/idx/a/<16 hex>    -> pins, bytes of a shard (written at a clean Close)
//	<ns>/idx/bloom         -> Bloom filter of the CID keys above (written at a clean Close)
//	<ns>/idx/version       -> indexVersion
//	<ns>/idx/dirty         -> present while a session runs
//
// Hooks update the CID entries (buffered in memory, written in batches)
// and the per-shard aggregates (in memory). Aggregates are written at a
// clean Close, which then removes the dirty marker. If Open finds the
// marker, the process stopped without Close (kill -9, power loss, panic)
// and the index may disagree with the CRDT: go-ds-crdt calls PutHook
// before the merged values are persisted, so the index can be ahead of
// the CRDT, and buffered updates can be lost. Open then rebuilds the index
// and aggregates by a full scan of the CRDT, which is the truth.
const indexVersion = 1

// ShardStats aggregates the pins of one shard.
type ShardStats struct {
	Shard int64
	Pins  int64
	Bytes int64 // sum of Pin.Size
}

// entry says a CID is pinned in shard with size bytes.
type entry struct {
	shard int64
	size  int64
}

type index struct {
	store   ds.Batching
	ns      ds.Key // <ns>/idx
	flushAt int
	log     *slog.Logger

	mu     sync.Mutex
	bloom  *bloom             // every CID key with an entry; nil until opened
	buf    map[string][]entry // cid key -> entries not yet written (empty: delete)
	shards map[int64]*ShardStats
	pins   int64
	bytes  int64
	// broken is set when an update could not be applied (a datastore
	// error inside a hook, which cannot return it). The dirty marker then
	// stays, so the next Open rebuilds.
	broken bool

	malformed uint64 // malformed keys or values met by hooks and scans
	applied   uint64 // hook calls since Open
}

func newIndex(store ds.Batching, ns ds.Key, flushAt int, log *slog.Logger) *index {
	return &index{
		store:   store,
		ns:      ns,
		flushAt: flushAt,
		log:     log,
		buf:     make(map[string][]entry),
		shards:  make(map[int64]*ShardStats),
	}
}

func (x *index) cidKey(ck string) ds.Key { return x.ns.ChildString("c").ChildString(ck) }
func (x *index) aggPrefix() ds.Key       { return x.ns.ChildString("a") }
func (x *index) aggKey(shard int64) ds.Key {
	return ds.NewKey(x.aggPrefix().String() + shardPrefix(shard))
}
func (x *index) dirtyKey() ds.Key            { return x.ns.ChildString("dirty") }
func (x *index) bloomKey() ds.Key            { return x.ns.ChildString("bloom") }
func (x *index) versionKey() ds.Key          { return x.ns.ChildString("version") }
func (x *index) addMalformed(n uint64)       { x.mu.Lock(); x.malformed += n; x.mu.Unlock() }
func encodeEntries(es []entry) []byte        { return appendEntries(make([]byte, 0, 20*len(es)), es) }
func appendUvarint(b []byte, v int64) []byte { return binary.AppendUvarint(b, uint64(v)) }

func appendEntries(b []byte, es []entry) []byte {
	for _, e := range es {
		b = appendUvarint(b, e.shard)
		b = appendUvarint(b, e.size)
	}
	return b
}

func decodeEntries(b []byte) ([]entry, error) {
	var es []entry
	for len(b) > 0 {
		shard, n := binary.Uvarint(b)
		if n <= 0 || shard > 1<<63-1 {
			return nil, fmt.Errorf("%w: index entry", ErrMalformed)
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > 1<<63-1 {
			return nil, fmt.Errorf("%w: index entry", ErrMalformed)
		}
		b = b[n:]
		if len(es) > 0 && int64(shard) <= es[len(es)-1].shard {
			return nil, fmt.Errorf("%w: index entries out of order", ErrMalformed)
		}
		es = append(es, entry{shard: int64(shard), size: int64(size)})
	}
	return es, nil
}

// needsRebuild reports whether the index must be rebuilt before use, and
// why: it was left dirty by a session that did not close, or it is
// missing or of another layout version.
func (x *index) needsRebuild(ctx context.Context) (string, error) {
	dirty, err := x.store.Has(ctx, x.dirtyKey())
	if err != nil {
		return "", fmt.Errorf("read index marker: %w", err)
	}
	if dirty {
		return "the previous session did not close cleanly", nil
	}
	v, err := x.store.Get(ctx, x.versionKey())
	switch {
	case errors.Is(err, ds.ErrNotFound):
		return "no index yet", nil
	case err != nil:
		return "", fmt.Errorf("read index version: %w", err)
	}
	if ver, n := binary.Uvarint(v); n <= 0 || ver != indexVersion {
		return "index layout changed", nil
	}
	return "", nil
}

// load reads the aggregates and Bloom filter written by the last clean
// Close. A missing or unreadable filter is rebuilt from the index keys.
func (x *index) load(ctx context.Context) error {
	if err := x.loadBloom(ctx); err != nil {
		return err
	}
	res, err := x.store.Query(ctx, query.Query{Prefix: x.aggPrefix().String()})
	if err != nil {
		return fmt.Errorf("load aggregates: %w", err)
	}
	defer res.Close()
	x.mu.Lock()
	defer x.mu.Unlock()
	for r := range res.Next() {
		if r.Error != nil {
			return fmt.Errorf("load aggregates: %w", r.Error)
		}
		sh, err := parseShard(ds.RawKey(r.Key).BaseNamespace())
		if err != nil {
			return fmt.Errorf("aggregate key %s: %w", r.Key, err)
		}
		pins, n1 := binary.Uvarint(r.Value)
		if n1 <= 0 {
			return fmt.Errorf("%w: aggregate %s", ErrMalformed, r.Key)
		}
		bytes, n2 := binary.Uvarint(r.Value[n1:])
		if n2 <= 0 || n1+n2 != len(r.Value) {
			return fmt.Errorf("%w: aggregate %s", ErrMalformed, r.Key)
		}
		x.shards[sh] = &ShardStats{Shard: sh, Pins: int64(pins), Bytes: int64(bytes)}
		x.pins += int64(pins)
		x.bytes += int64(bytes)
	}
	return nil
}

func (x *index) loadBloom(ctx context.Context) error {
	v, err := x.store.Get(ctx, x.bloomKey())
	if err == nil {
		if b, err := unmarshalBloom(v); err == nil {
			x.mu.Lock()
			x.bloom = b
			x.mu.Unlock()
			return nil
		}
	} else if !errors.Is(err, ds.ErrNotFound) {
		return fmt.Errorf("load index filter: %w", err)
	}
	b := newBloom(0)
	prefix := x.ns.ChildString("c").String() + "/"
	res, err := x.store.Query(ctx, query.Query{Prefix: x.ns.ChildString("c").String(), KeysOnly: true})
	if err != nil {
		return fmt.Errorf("build index filter: %w", err)
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return fmt.Errorf("build index filter: %w", r.Error)
		}
		b.add(strings.TrimPrefix(r.Key, prefix))
	}
	x.mu.Lock()
	x.bloom = b
	x.mu.Unlock()
	return nil
}

// begin marks the index dirty for this session, durably.
func (x *index) begin(ctx context.Context) error {
	if err := x.store.Put(ctx, x.dirtyKey(), nil); err != nil {
		return fmt.Errorf("mark index dirty: %w", err)
	}
	if err := x.store.Sync(ctx, x.ns); err != nil {
		return fmt.Errorf("sync index marker: %w", err)
	}
	return nil
}

// lookup returns where the CID with key ck is pinned, by ascending shard.
func (x *index) lookup(ctx context.Context, ck string) ([]entry, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	es, err := x.entriesLocked(ctx, ck)
	return slices.Clone(es), err
}

func (x *index) entriesLocked(ctx context.Context, ck string) ([]entry, error) {
	if es, ok := x.buf[ck]; ok {
		return es, nil
	}
	if !x.bloom.mayHave(ck) {
		return nil, nil
	}
	v, err := x.store.Get(ctx, x.cidKey(ck))
	if errors.Is(err, ds.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read index of %s: %w", ck, err)
	}
	return decodeEntries(v)
}

// setLocked records that the CID ck is (present) or is not pinned in
// shard, with size bytes, and adjusts the aggregates by the difference
// with what was recorded before. Applying the same update twice changes
// nothing, so re-merged deltas are harmless.
func (x *index) setLocked(ctx context.Context, ck string, shard, size int64, present bool) error {
	es, err := x.entriesLocked(ctx, ck)
	if err != nil {
		// Unreadable entry: forget it; the dirty marker stays and the next
		// Open rebuilds.
		x.broken = true
		es = nil
	}
	i := sort.Search(len(es), func(i int) bool { return es[i].shard >= shard })
	found := i < len(es) && es[i].shard == shard
	if found == present && (!found || es[i].size == size) {
		return nil // nothing changes
	}
	if found {
		x.account(shard, -1, -es[i].size)
	}
	out := make([]entry, 0, len(es)+1)
	out = append(out, es[:i]...)
	if present {
		out = append(out, entry{shard: shard, size: size})
		x.account(shard, 1, size)
		x.bloom.add(ck)
	}
	if found {
		i++
	}
	out = append(out, es[i:]...)
	x.buf[ck] = out
	if len(x.buf) >= x.flushAt {
		return x.flushLocked(ctx)
	}
	return nil
}

func (x *index) account(shard, pins, bytes int64) {
	s := x.shards[shard]
	if s == nil {
		s = &ShardStats{Shard: shard}
		x.shards[shard] = s
	}
	s.Pins += pins
	s.Bytes += bytes
	x.pins += pins
	x.bytes += bytes
	if s.Pins == 0 && s.Bytes == 0 {
		delete(x.shards, shard)
	}
}

func (x *index) flushLocked(ctx context.Context) error {
	if len(x.buf) == 0 {
		return nil
	}
	b, err := x.store.Batch(ctx)
	if err != nil {
		x.broken = true
		return fmt.Errorf("flush index: %w", err)
	}
	for ck, es := range x.buf {
		if len(es) == 0 {
			err = b.Delete(ctx, x.cidKey(ck))
		} else {
			err = b.Put(ctx, x.cidKey(ck), encodeEntries(es))
		}
		if err != nil {
			x.broken = true
			return fmt.Errorf("flush index: %w", err)
		}
	}
	if err := b.Commit(ctx); err != nil {
		x.broken = true
		return fmt.Errorf("flush index: %w", err)
	}
	clear(x.buf)
	return nil
}

// putHook is go-ds-crdt's PutHook: key k now has value v (not yet
// persisted by go-ds-crdt when this runs).
func (x *index) putHook(k string, v []byte) {
	// A record that decodes and matches its key proves the key canonical
	// (decodeEntry), so the key's CID is parsed only when it does not:
	// this hook runs for every pin merged, on go-ds-crdt's merge path.
	p, derr := decodeEntry(k, v)
	var shard int64
	var ck string
	var kerr error
	if derr == nil {
		shard, ck, kerr = splitKey(k)
	} else {
		shard, ck, kerr = parseKey(k)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.applied++
	if kerr != nil {
		x.malformed++
		x.log.Warn("pinset: CRDT key outside the layout", "key", k, "err", kerr)
		return
	}
	present := derr == nil
	if !present {
		x.malformed++
		x.log.Warn("pinset: malformed pin record in CRDT; ignored", "key", k, "err", derr)
	}
	if err := x.setLocked(context.Background(), ck, shard, p.Size, present); err != nil {
		x.log.Error("pinset: index update failed; will rebuild at next open", "key", k, "err", err)
	}
}

// deleteHook is go-ds-crdt's DeleteHook: some version of key k was
// tombstoned and persisted; current returns the value the key has now, if
// any (another version may remain).
func (x *index) deleteHook(k string, current func(string) ([]byte, bool, error)) {
	shard, ck, err := parseKey(k)
	if err != nil {
		x.addMalformed(1)
		return
	}
	v, ok, err := current(k)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.applied++
	if err != nil {
		x.broken = true
		x.log.Error("pinset: read after delete failed; will rebuild at next open", "key", k, "err", err)
		return
	}
	var size int64
	if ok {
		p, err := decodeEntry(k, v)
		if err != nil {
			x.malformed++
			ok = false
		}
		size = p.Size
	}
	if err := x.setLocked(context.Background(), ck, shard, size, ok); err != nil {
		x.log.Error("pinset: index update failed; will rebuild at next open", "key", k, "err", err)
	}
}

// rebuild discards the index and derives it again from scan, which calls
// its argument for every key and value of the CRDT, in key order.
func (x *index) rebuild(ctx context.Context, scan func(func(k string, v []byte) error) error) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	n, err := x.dropLocked(ctx)
	if err != nil {
		return err
	}
	x.bloom = newBloom(uint64(n))
	err = scan(func(k string, v []byte) error {
		shard, ck, err := parseKey(k)
		if err != nil {
			x.malformed++
			return nil
		}
		p, err := decodeEntry(k, v)
		if err != nil {
			x.malformed++
			return nil
		}
		return x.setLocked(ctx, ck, shard, p.Size, true)
	})
	if err != nil {
		return fmt.Errorf("rebuild index: %w", err)
	}
	if err := x.flushLocked(ctx); err != nil {
		return err
	}
	ver := binary.AppendUvarint(nil, indexVersion)
	if err := x.store.Put(ctx, x.versionKey(), ver); err != nil {
		return fmt.Errorf("rebuild index: %w", err)
	}
	x.broken = false
	return nil
}

// dropLocked deletes every index key and forgets the aggregates. It
// returns how many CID entries there were.
func (x *index) dropLocked(ctx context.Context) (int, error) {
	clear(x.buf)
	clear(x.shards)
	x.pins, x.bytes = 0, 0
	total := 0
	for _, prefix := range []ds.Key{x.ns.ChildString("c"), x.aggPrefix()} {
		n, err := deletePrefix(ctx, x.store, prefix)
		if err != nil {
			return 0, fmt.Errorf("drop index: %w", err)
		}
		total += n
	}
	if err := x.store.Delete(ctx, x.bloomKey()); err != nil {
		return 0, fmt.Errorf("drop index: %w", err)
	}
	return total, nil
}

// deletePrefix deletes every key under prefix, in batches, and returns
// how many.
func deletePrefix(ctx context.Context, store ds.Batching, prefix ds.Key) (int, error) {
	total := 0
	for {
		res, err := store.Query(ctx, query.Query{Prefix: prefix.String(), KeysOnly: true, Limit: 10_000})
		if err != nil {
			return total, err
		}
		b, err := store.Batch(ctx)
		if err != nil {
			res.Close()
			return total, err
		}
		n := 0
		for r := range res.Next() {
			if r.Error != nil {
				res.Close()
				return total, r.Error
			}
			if err := b.Delete(ctx, ds.RawKey(r.Key)); err != nil {
				res.Close()
				return total, err
			}
			n++
		}
		res.Close()
		if err := b.Commit(ctx); err != nil {
			return total, err
		}
		total += n
		if n == 0 {
			return total, nil
		}
	}
}

// close writes everything and removes the dirty marker, unless an update
// was lost in this session.
func (x *index) close(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.flushLocked(ctx); err != nil {
		return err
	}
	if _, err := deletePrefix(ctx, x.store, x.aggPrefix()); err != nil {
		return fmt.Errorf("write aggregates: %w", err)
	}
	b, err := x.store.Batch(ctx)
	if err != nil {
		return fmt.Errorf("write aggregates: %w", err)
	}
	if x.bloom != nil {
		if err := b.Put(ctx, x.bloomKey(), x.bloom.marshal()); err != nil {
			return fmt.Errorf("write index filter: %w", err)
		}
	}
	for shard, s := range x.shards {
		v := appendUvarint(appendUvarint(nil, s.Pins), s.Bytes)
		if err := b.Put(ctx, x.aggKey(shard), v); err != nil {
			return fmt.Errorf("write aggregates: %w", err)
		}
	}
	if err := b.Commit(ctx); err != nil {
		return fmt.Errorf("write aggregates: %w", err)
	}
	if err := x.store.Sync(ctx, ds.NewKey("/")); err != nil {
		return fmt.Errorf("sync index: %w", err)
	}
	if x.broken {
		return nil // keep the marker: rebuild at next Open
	}
	if err := x.store.Delete(ctx, x.dirtyKey()); err != nil {
		return fmt.Errorf("clear index marker: %w", err)
	}
	if err := x.store.Sync(ctx, x.ns); err != nil {
		return fmt.Errorf("sync index marker: %w", err)
	}
	return nil
}

// snapshot returns the totals and a copy of the per-shard aggregates.
func (x *index) snapshot() (pins, bytes int64, shards []ShardStats, malformed, applied uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	shards = make([]ShardStats, 0, len(x.shards))
	for _, s := range x.shards {
		shards = append(shards, *s)
	}
	slices.SortFunc(shards, func(a, b ShardStats) int {
		switch {
		case a.Shard < b.Shard:
			return -1
		case a.Shard > b.Shard:
			return 1
		}
		return 0
	})
	return x.pins, x.bytes, shards, x.malformed, x.applied
}
