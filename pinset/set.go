package pinset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	badger4 "github.com/ipfs/go-ds-badger4"
	crdt "github.com/ipfs/go-ds-crdt"
	ipld "github.com/ipfs/go-ipld-format"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Deps are what a Set runs on. The caller owns all of them and closes them
// after the Set.
type Deps struct {
	// Datastore holds the CRDT, the index and the sync bookkeeping under
	// Config.Namespace (badger4 in production). Add syncs it after every
	// batch; if the DAG's blockstore lives elsewhere, that store must
	// persist its writes itself.
	Datastore ds.Batching
	// DAG stores and fetches CRDT blocks (boxo merkledag over a block
	// service with bitswap in production).
	DAG ipld.DAGService
	// Topic is the CRDT topic, already joined with a Validator registered
	// (JoinTopic does both, in that order). The Set subscribes to it and,
	// on a writer, publishes to it. Nil runs the Set without a network:
	// heads then arrive only through Feed and WaitFor.
	Topic *pubsub.Topic
	// Trusted says whether a peer may author CRDT broadcasts; required
	// with a Topic. Checked again on every message the subscription
	// delivers, after the topic validator. It must be safe for concurrent
	// use and must not block.
	Trusted func(peer.ID) bool
	// Logger receives this package's and go-ds-crdt's logs; nil discards.
	Logger *slog.Logger
}

// Set is one replica of a cluster's pinset. Its methods are safe for
// concurrent use. Open starts go-ds-crdt's goroutines and, with a Topic,
// one goroutine reading the subscription; Close stops and waits for all of
// them.
type Set struct {
	cfg    Config
	log    *slog.Logger
	store  ds.Batching
	ns     ds.Key
	crdtNS ds.Key
	inner  ipld.DAGService
	guard  *guard
	crdt   *crdt.Datastore
	idx    *index
	feed   *feeder
	pre    *prefetcher // nil when Config.PrefetchBlocks is 0
	// linkCache holds the links of CRDT blocks read by walks. A block's
	// links never change, and a catch-up walks the processed part of the
	// DAG again after every merge: without it, a fresh replica of 1M pins
	// read each delta block about a hundred times.
	linkCache *lru.Cache[cid.Cid, []cid.Cid]

	writeMu sync.Mutex // one batch at a time: go-ds-crdt's pending delta is global
	// mergeMu is held while a local delta is built and merged (go-ds-crdt
	// merges on Commit, and on Put or Delete if a delta grows too large),
	// so that Snapshot reads heads and counts between deltas. Commit also
	// holds remote walks back (feeder.hold), like Snapshot.
	mergeMu sync.Mutex

	life      sync.Mutex // guards closed and ops
	idle      *sync.Cond // signalled when ops drops to 0
	closed    bool
	ops       int // operations in progress
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open opens the replica stored in deps.Datastore, creating it if empty.
// If the previous session did not Close (a crash), the index is rebuilt
// from the CRDT and walks that were cut short resume.
func Open(ctx context.Context, cfg Config, deps Deps) (*Set, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Datastore == nil || deps.DAG == nil {
		return nil, fmt.Errorf("%w: Datastore and DAG are required", ErrConfig)
	}
	if deps.Topic != nil && deps.Trusted == nil {
		return nil, fmt.Errorf("%w: Trusted is required with a Topic", ErrConfig)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ns := ds.NewKey(cfg.Namespace)
	s := &Set{
		cfg:     cfg,
		log:     log,
		store:   deps.Datastore,
		ns:      ns,
		crdtNS:  ns.ChildString("crdt"),
		inner:   deps.DAG,
		closing: make(chan struct{}),
	}
	s.idle = sync.NewCond(&s.life)
	lc, err := lru.New[cid.Cid, []cid.Cid](linkCacheEntries)
	if err != nil {
		return nil, fmt.Errorf("links cache: %w", err)
	}
	s.linkCache = lc
	s.guard = &guard{inner: deps.DAG, writer: cfg.Writer, maxBytes: cfg.MaxBlockBytes, timeout: cfg.FetchTimeout}
	if cfg.PrefetchBlocks > 0 {
		s.pre = newPrefetcher(s, deps.DAG, cfg.PrefetchBlocks)
		s.guard.fetched = s.pre.fetchedByCRDT
	}
	s.idx = newIndex(deps.Datastore, ns.ChildString("idx"), cfg.IndexFlushEntries, log)

	// Read the dirty marker, then set it before go-ds-crdt can merge
	// anything: from here on, a crash means a rebuild at the next Open.
	rebuild, err := s.idx.needsRebuild(ctx)
	if err != nil {
		return nil, fmt.Errorf("open pinset: %w", err)
	}
	if err := s.idx.begin(ctx); err != nil {
		return nil, fmt.Errorf("open pinset: %w", err)
	}
	s.feed, err = newFeeder(ctx, s, deps.Topic, deps.Trusted)
	if err != nil {
		return nil, fmt.Errorf("open pinset: %w", err)
	}

	opts := crdt.DefaultOptions()
	opts.Logger = crdtLogger{l: log}
	opts.RebroadcastInterval = cfg.RebroadcastInterval
	opts.PutHook = func(k ds.Key, v []byte) {
		if s.waitReady() {
			s.idx.putHook(k.String(), v)
		}
	}
	opts.DeleteHook = func(k ds.Key) {
		if s.waitReady() {
			s.idx.deleteHook(k.String(), s.currentValue)
		}
	}
	opts.NumWorkers = cfg.NumWorkers
	opts.DAGSyncerTimeout = cfg.FetchTimeout
	opts.MaxBatchDeltaSize = cfg.MaxDeltaBytes
	opts.RepairInterval = cfg.RepairInterval
	// One broadcast at a time: handleNext then calls Next only after the
	// previous heads were walked, which is what lets the feeder tell a
	// finished walk from a running one (see feeder.review).
	opts.MultiHeadProcessing = false

	store, err := crdt.New(deps.Datastore, s.crdtNS, s.guard, s.feed, opts)
	if err != nil {
		s.feed.stop()
		return nil, fmt.Errorf("open pinset: %w", err)
	}
	s.crdt = store

	if err := s.openIndex(ctx, rebuild); err != nil {
		s.feed.stop()
		_ = store.Close()
		s.feed.wait()
		return nil, fmt.Errorf("open pinset: %w", err)
	}
	if s.pre != nil {
		s.pre.start()
	}
	s.feed.start()
	return s, nil
}

func (s *Set) openIndex(ctx context.Context, rebuild string) error {
	if rebuild != "" {
		start := time.Now()
		if err := s.idx.rebuild(ctx, s.scan); err != nil {
			return err
		}
		pins, _, _, _, _ := s.idx.snapshot()
		s.log.Info("pinset: rebuilt index from the CRDT", "reason", rebuild, "pins", pins, "took", time.Since(start))
		return nil
	}
	return s.idx.load(ctx)
}

// waitReady is called by the hooks: go-ds-crdt can merge before Open has
// loaded or rebuilt the index (its repair of a dirty DAG starts at once),
// and such updates must apply to the loaded index, not be overwritten by
// it. It reports false if Open failed or the set is closing; the update is
// then lost, and the dirty marker (set before go-ds-crdt started) makes
// the next Open rebuild.
func (s *Set) waitReady() bool {
	select {
	case <-s.feed.started:
		return true
	case <-s.feed.ctx.Done():
		return false
	}
}

// scan calls fn for every key and value of the CRDT, in key order.
func (s *Set) scan(fn func(k string, v []byte) error) error {
	res, err := s.crdt.Query(context.Background(), query.Query{})
	if err != nil {
		return err
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return r.Error
		}
		if err := fn(r.Key, r.Value); err != nil {
			return err
		}
	}
	return nil
}

// currentValue reads key k from the CRDT, for the DeleteHook (which runs
// only once Open is done, see waitReady).
func (s *Set) currentValue(k string) ([]byte, bool, error) {
	v, err := s.crdt.Get(context.Background(), ds.NewKey(k))
	if errors.Is(err, ds.ErrNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

// Close stops the replica: it cancels the broadcaster (before go-ds-crdt,
// whose Close would otherwise wait on it), closes go-ds-crdt, waits for
// every goroutine, then writes the index and marks it clean. Operations
// in progress stop with ErrClosed (a List callback in progress is waited
// for); later ones fail with ErrClosed. Close is idempotent.
func (s *Set) Close() error {
	s.closeOnce.Do(func() {
		s.shut()
		s.feed.stop()
		err := s.crdt.Close()
		s.feed.wait()
		if s.pre != nil {
			s.pre.stop()
		}
		ctx := context.Background()
		s.closeErr = errors.Join(err, s.idx.close(ctx))
	})
	return s.closeErr
}

// shut refuses new operations and waits for those in progress.
func (s *Set) shut() {
	close(s.closing)
	s.life.Lock()
	s.closed = true
	for s.ops > 0 {
		s.idle.Wait()
	}
	s.life.Unlock()
}

// enter starts an operation; the returned func ends it. Operations may
// nest (a List callback may call Get): after Close began, the inner one
// fails with ErrClosed instead of waiting.
func (s *Set) enter() (func(), error) {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.ops++
	return s.leave, nil
}

func (s *Set) leave() {
	s.life.Lock()
	s.ops--
	if s.ops == 0 {
		s.idle.Broadcast()
	}
	s.life.Unlock()
}

func (s *Set) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// item is one pin ready to be written.
type item struct {
	ck    string
	shard int64
	key   ds.Key
	value []byte
}

// Add writes pins, committing one CRDT delta per batch of at most
// Config.BatchKeys keys and Config.MaxDeltaBytes bytes, and syncing the
// datastore after each. A pin whose identical record is already stored is
// skipped, so re-running an interrupted import writes nothing twice. A
// pin stored in another shard is moved (its old key deleted in the same
// delta). It returns how many pins were written. Pins are checked a batch
// at a time: on error, the batches before the failing one stay written.
func (s *Set) Add(ctx context.Context, pins []Pin) (int, error) {
	if !s.cfg.Writer {
		return 0, ErrReadOnly
	}
	leave, err := s.enter()
	if err != nil {
		return 0, err
	}
	defer leave()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	w := s.newWriter()
	for i := range pins {
		if err := s.interrupted(ctx); err != nil {
			return w.committed, err
		}
		value, err := EncodePin(pins[i])
		if err != nil {
			return w.committed, fmt.Errorf("pin %d: %w", i, err)
		}
		it := item{ck: cidKey(pins[i].CID), shard: pins[i].Shard, value: value}
		it.key = ds.NewKey(shardPrefix(it.shard) + "/" + it.ck)
		if err := w.put(ctx, it); err != nil {
			return w.committed, err
		}
	}
	err = w.commit(ctx)
	return w.committed, err
}

// Remove deletes the pins of cids, in batches like Add. A CID that is not
// pinned is skipped. It returns how many pins were removed.
func (s *Set) Remove(ctx context.Context, cids []cid.Cid) (int, error) {
	if !s.cfg.Writer {
		return 0, ErrReadOnly
	}
	leave, err := s.enter()
	if err != nil {
		return 0, err
	}
	defer leave()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	w := s.newWriter()
	for i, c := range cids {
		if err := s.interrupted(ctx); err != nil {
			return w.committed, err
		}
		if !c.Defined() {
			return w.committed, fmt.Errorf("cid %d: %w: undefined", i, ErrInvalidPin)
		}
		if err := w.remove(ctx, cidKey(c)); err != nil {
			return w.committed, err
		}
	}
	err = w.commit(ctx)
	return w.committed, err
}

func (s *Set) interrupted(ctx context.Context) error {
	if s.isClosing() {
		return ErrClosed
	}
	return ctx.Err()
}

// writer accumulates one go-ds-crdt batch.
type writer struct {
	s         *Set
	batch     ds.Batch
	keys      int
	bytes     int
	pending   int                 // pins in the open batch
	committed int                 // pins in batches committed so far
	cids      map[string]struct{} // CIDs touched by the open batch
}

func (s *Set) newWriter() *writer {
	return &writer{s: s, cids: make(map[string]struct{})}
}

// Bytes one key adds to a delta besides key and value: the protobuf
// framing of an element (go-ds-crdt fills element ids in after the block
// is made, so they cost nothing here), with a margin. Measured: a delta
// of 3,333 pins with 77-byte keys and ~120-byte values is 714 KB.
const deltaOverhead = 16

// A removal adds one tombstone per live version of the key, each carrying
// the key and the id of the block that added it (a 56-byte multihash key).
// One version is usual; estimate two.
const tombOverhead = 2 * (56 + deltaOverhead)

func (w *writer) room(ctx context.Context, ck string, keys, bytes int) error {
	if w.batch != nil && (w.keys+keys > w.s.cfg.BatchKeys || w.bytes+bytes > w.s.cfg.MaxDeltaBytes*9/10) {
		if err := w.commit(ctx); err != nil {
			return err
		}
	}
	if w.batch == nil {
		b, err := w.s.crdt.Batch(ctx)
		if err != nil {
			return fmt.Errorf("start batch: %w", err)
		}
		w.batch = b
	}
	w.cids[ck] = struct{}{}
	w.keys += keys
	w.bytes += bytes
	return nil
}

func (w *writer) put(ctx context.Context, it item) error {
	if _, dup := w.cids[it.ck]; dup && w.batch != nil {
		// Touched by the open batch: commit it so the index is current
		// and one delta never carries two versions of a CID.
		if err := w.commit(ctx); err != nil {
			return err
		}
	}
	es, err := w.s.idx.lookup(ctx, it.ck)
	if err != nil {
		return err
	}
	var stale []entry
	for _, e := range es {
		if e.shard != it.shard {
			stale = append(stale, e)
			continue
		}
		cur, err := w.s.crdt.Get(ctx, it.key)
		if err == nil && bytes.Equal(cur, it.value) && len(es) == 1 {
			return nil // unchanged
		}
	}
	size := len(it.key.String()) + len(it.value) + deltaOverhead
	for _, e := range stale {
		size += 2*(len(shardPrefix(e.shard))+1+len(it.ck)) + tombOverhead
	}
	if err := w.room(ctx, it.ck, 1+len(stale), size); err != nil {
		return err
	}
	w.s.mergeMu.Lock()
	defer w.s.mergeMu.Unlock()
	for _, e := range stale {
		if err := w.batch.Delete(ctx, ds.NewKey(shardPrefix(e.shard)+"/"+it.ck)); err != nil {
			return fmt.Errorf("move %s from shard %d: %w", it.ck, e.shard, err)
		}
	}
	if err := w.batch.Put(ctx, it.key, it.value); err != nil {
		return fmt.Errorf("put %s: %w", it.key, err)
	}
	w.pending++
	return nil
}

func (w *writer) remove(ctx context.Context, ck string) error {
	if _, dup := w.cids[ck]; dup && w.batch != nil {
		// Touched by the open batch: commit it so the index is current.
		if err := w.commit(ctx); err != nil {
			return err
		}
	}
	es, err := w.s.idx.lookup(ctx, ck)
	if err != nil || len(es) == 0 {
		return err
	}
	size := 0
	for _, e := range es {
		size += 2*(len(shardPrefix(e.shard))+1+len(ck)) + tombOverhead
	}
	if err := w.room(ctx, ck, len(es), size); err != nil {
		return err
	}
	w.s.mergeMu.Lock()
	defer w.s.mergeMu.Unlock()
	for _, e := range es {
		if err := w.batch.Delete(ctx, ds.NewKey(shardPrefix(e.shard)+"/"+ck)); err != nil {
			return fmt.Errorf("remove %s: %w", ck, err)
		}
	}
	w.pending++
	return nil
}

// commit publishes the open batch as one delta (go-ds-crdt merges it and
// runs the hooks before Commit returns), then syncs the datastore so the
// delta survives a crash.
func (w *writer) commit(ctx context.Context) error {
	if w.batch == nil {
		return nil
	}
	b := w.batch
	w.batch, w.keys, w.bytes = nil, 0, 0
	clear(w.cids)
	n := w.pending
	w.pending = 0
	// A local delta is made between walks of remote ones: go-ds-crdt
	// adopts a fresh replica's first broadcast heads before it has merged
	// them, and a delta made then links a head it has not processed (it
	// logs "created a block to unknown children"), after which two
	// replicas of the same state can keep different CRDT heads.
	release, err := w.s.feed.hold(ctx)
	if err != nil {
		return fmt.Errorf("commit batch: %w", err)
	}
	w.s.mergeMu.Lock()
	err = b.Commit(ctx)
	w.s.mergeMu.Unlock()
	release()
	if err != nil {
		return fmt.Errorf("commit batch: %w", err)
	}
	w.committed += n
	if err := w.s.store.Sync(ctx, ds.NewKey("/")); err != nil {
		return fmt.Errorf("sync batch: %w", err)
	}
	return nil
}

// Get returns the pin of c (a CIDv0 and its CIDv1 are the same pin).
func (s *Set) Get(ctx context.Context, c cid.Cid) (Pin, error) {
	leave, err := s.enter()
	if err != nil {
		return Pin{}, err
	}
	defer leave()
	if !c.Defined() {
		return Pin{}, fmt.Errorf("get: %w: undefined CID", ErrNotFound)
	}
	ck := cidKey(c)
	es, err := s.idx.lookup(ctx, ck)
	if err != nil {
		return Pin{}, fmt.Errorf("get %s: %w", c, err)
	}
	for _, e := range es {
		k := shardPrefix(e.shard) + "/" + ck
		v, err := s.crdt.Get(ctx, ds.NewKey(k))
		if errors.Is(err, ds.ErrNotFound) {
			continue
		}
		if err != nil {
			return Pin{}, fmt.Errorf("get %s: %w", c, err)
		}
		p, err := decodeEntry(k, v)
		if err != nil {
			continue
		}
		return p, nil
	}
	return Pin{}, fmt.Errorf("get %s: %w", c, ErrNotFound)
}

// Has reports whether c is pinned (Get would succeed).
func (s *Set) Has(ctx context.Context, c cid.Cid) (bool, error) {
	_, err := s.Get(ctx, c)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// List calls fn for every pin, ordered by shard then CID key, streaming
// from the datastore: memory does not grow with the pinset. Malformed
// records are skipped (Stats counts them as they arrive). An error from
// fn stops the listing and is returned.
func (s *Set) List(ctx context.Context, fn func(Pin) error) error {
	return s.list(ctx, "", fn)
}

// Cursor is a position in a listing: the shard and CID of the last pin
// a client received. A listing resumes after it.
type Cursor struct {
	Shard int64
	CID   cid.Cid
}

// String is the cursor as the list API takes it: "<shard>/<cid>".
func (c Cursor) String() string { return strconv.FormatInt(c.Shard, 10) + "/" + c.CID.String() }

// ParseCursor reads a cursor written by Cursor.String.
func ParseCursor(s string) (Cursor, error) {
	sh, cs, ok := strings.Cut(s, "/")
	if !ok {
		return Cursor{}, fmt.Errorf("cursor %.80q: want <shard>/<cid>", s)
	}
	shard, err := strconv.ParseInt(sh, 10, 64)
	if err != nil || shard < 0 {
		return Cursor{}, fmt.Errorf("cursor %.80q: shard is not a non-negative integer", s)
	}
	c, err := cid.Decode(cs)
	if err != nil {
		return Cursor{}, fmt.Errorf("cursor %.80q: %w", s, err)
	}
	return Cursor{Shard: shard, CID: c}, nil
}

// ListAfter calls fn for every pin after cur, in the order List uses
// (shard, then CID key), so that a listing cut anywhere resumes where it
// stopped: pass the shard and CID of the last pin received. It starts at
// cur's shard, so a resumed listing costs what is left of it plus the
// part of that one shard already sent.
func (s *Set) ListAfter(ctx context.Context, cur Cursor, fn func(Pin) error) error {
	after := pinKey(cur.Shard, cur.CID)
	for _, sh := range s.Stats().Shards {
		if sh.Shard < cur.Shard {
			continue
		}
		err := s.list(ctx, shardPrefix(sh.Shard), func(p Pin) error {
			if p.Shard == cur.Shard && pinKey(p.Shard, p.CID) <= after {
				return nil
			}
			return fn(p)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ListShard is List restricted to one shard.
func (s *Set) ListShard(ctx context.Context, shard int64, fn func(Pin) error) error {
	if shard < 0 {
		return nil
	}
	return s.list(ctx, shardPrefix(shard), fn)
}

func (s *Set) list(ctx context.Context, prefix string, fn func(Pin) error) error {
	leave, err := s.enter()
	if err != nil {
		return err
	}
	defer leave()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	return s.listIn(ctx, s.store, prefix, fn)
}

// listIn lists the pins under prefix from store, the replica's datastore.
// go-ds-crdt's Query reads the same keys and hands each over through a
// goroutine of its own, after go-ds-badger4's: reading them here saves
// those hops per pin, and on badger the query's too. The layout (the set's
// values under <ns>/s/k/<key>/v, present only while the key is not
// tombstoned) is go-ds-crdt's since its first release; the List tests
// check it against a model, on both paths.
func (s *Set) listIn(ctx context.Context, store ds.Datastore, prefix string, fn func(Pin) error) error {
	base := s.crdtNS.ChildString("s").ChildString("k")
	if bd, ok := store.(*badger4.Datastore); ok {
		return s.listBadger(ctx, bd.DB, base.String(), base.Child(ds.NewKey(prefix)).String(), fn)
	}
	res, err := store.Query(ctx, query.Query{Prefix: base.Child(ds.NewKey(prefix)).String()})
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	defer res.Close()
	baseStr := base.String()
	for r := range res.Next() {
		if r.Error != nil {
			return fmt.Errorf("list: %w", r.Error)
		}
		if s.isClosing() {
			return ErrClosed
		}
		if !strings.HasSuffix(r.Key, valueSuffix) {
			continue // the element's priority
		}
		p, err := decodeEntry(strings.TrimSuffix(strings.TrimPrefix(r.Key, baseStr), valueSuffix), r.Value)
		if err != nil {
			continue
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// valueSuffix ends the key of a live element's value in go-ds-crdt's set
// (<ns>/s/k/<key>/v); its priority is under <key>/p.
const valueSuffix = "/v"

// listBadger is list's loop over badger itself: keys in order under
// prefix, values read in place (decodeEntry copies what it keeps), no
// goroutine per pin.
func (s *Set) listBadger(ctx context.Context, db *badgerdb.DB, base, prefix string, fn func(Pin) error) error {
	txn := db.NewTransaction(false)
	defer txn.Discard()
	opts := badgerdb.DefaultIteratorOptions
	opts.PrefetchValues = false // values are small and inline: read them in place
	opts.Prefix = []byte(prefix + "/")
	it := txn.NewIterator(opts)
	defer it.Close()
	return s.iterPins(ctx, it, base, opts.Prefix, nil, fn)
}

// Stats describes a replica.
type Stats struct {
	Pins   int64
	Bytes  int64        // sum of Pin.Size
	Shards []ShardStats // ascending shard; shards with no pins are absent

	// Since Open:
	KeysApplied     uint64 // CRDT key updates merged (local and remote)
	BlocksRequested uint64 // CRDT blocks go-ds-crdt asked the DAG for (local or remote)
	FetchFailures   uint64 // of which failed or were refused
	Prefetched      uint64 // CRDT blocks fetched ahead of go-ds-crdt's walk
	// Malformed counts CRDT keys or values outside the pin layout met by
	// the hooks (or by an index rebuild); they are ignored.
	Malformed uint64
	// Broadcasts dropped by the subscription reader: author not trusted
	// (the topic validator should have stopped them), malformed, or over
	// MaxPending.
	Untrusted         uint64
	BadBroadcasts     uint64
	DroppedBroadcasts uint64
	// Pending is the number of CRDT heads received or fed and not yet
	// known to be fully processed.
	Pending int
}

// Stats returns the aggregates and counters. It reads memory only.
func (s *Set) Stats() Stats {
	pins, bytes, shards, malformed, applied := s.idx.snapshot()
	var prefetched uint64
	if s.pre != nil {
		prefetched = s.pre.count.Load()
	}
	return Stats{
		Prefetched:        prefetched,
		Pins:              pins,
		Bytes:             bytes,
		Shards:            shards,
		KeysApplied:       applied,
		BlocksRequested:   s.guard.requested.Load(),
		FetchFailures:     s.guard.failed.Load(),
		Malformed:         malformed,
		Untrusted:         s.feed.untrusted.Load(),
		BadBroadcasts:     s.feed.malformed.Load(),
		DroppedBroadcasts: s.feed.dropped.Load(),
		Pending:           s.feed.pendingCount(),
	}
}

// Heads returns the current go-ds-crdt heads, ascending by bytes: what a
// signed head links so that followers can tell when they have caught up.
func (s *Set) Heads() []cid.Cid {
	return s.crdt.InternalStats(context.Background()).Heads
}
