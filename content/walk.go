package content

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/verifcid"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	_ "github.com/ipld/go-ipld-prime/codec/dagcbor" // dag-cbor pins decode too
	mh "github.com/multiformats/go-multihash"
)

// Stat counts the distinct blocks of a DAG (or of several) and their
// bytes: what a holder stores. Blocks are distinct by multihash, as the
// block store keys them; identity CIDs (data inlined in the CID) are not
// stored and count for nothing.
type Stat struct {
	Blocks int64
	Bytes  int64
}

// maxCodecsPerBlock bounds how many codecs one multihash may be linked
// under within a DAG (the same bytes read as raw and as dag-pb, say).
const maxCodecsPerBlock = 4

// walkLimits bound one walk.
type walkLimits struct {
	concurrency int
	maxBlocks   int64 // distinct multihashes, identity included
	maxLinks    int   // links of one block
	maxBytes    int64 // bytes of the DAG; 0: no limit
}

// fetchFunc returns the size of block c and its links (nil for a raw
// block). The walker calls it from several goroutines at once.
type fetchFunc func(ctx context.Context, c cid.Cid) (int64, []*ipld.Link, error)

// nodeInfo is a fetchFunc's answer for a decoded node.
func nodeInfo(c cid.Cid, nd ipld.Node) (int64, []*ipld.Link, error) {
	if !nd.Cid().Equals(c) {
		return 0, nil, fmt.Errorf("%w: %s: fetched node is %s", ErrMalformed, c, nd.Cid())
	}
	return int64(len(nd.RawData())), nd.Links(), nil
}

// blockEntry is one distinct block of a walked DAG.
type blockEntry struct {
	mh   string // multihash bytes
	size int64
}

// seen is what a walker knows of one multihash.
type seen struct {
	size   int64    // -1 until a node of it was fetched
	codecs []uint64 // codecs it was queued under
}

// walker walks one DAG from its root with bounded concurrency: workers
// take CIDs from a stack (depth first, so the stack stays small), fetch
// them, and push the links they had not seen. Every multihash is fetched
// once per codec it is linked under; everything is bounded by walkLimits.
//
// The workers are goroutines started by run, which waits for all of them
// before returning.
type walker struct {
	lim      walkLimits
	fetch    fetchFunc
	guard    *sync.RWMutex // if not nil, held for reading while blocks are registered (see Fetcher.collect)
	progress func(Stat)    // may be nil; calls are serialised and monotonic

	mu     sync.Mutex
	cond   sync.Cond // signalled when stack grows, busy drops or stop is set
	stack  []cid.Cid
	blocks map[string]seen
	busy   int
	stop   bool
	err    error
	done   Stat

	progMu   sync.Mutex
	reported int64 // blocks last passed to progress
}

func newWalker(lim walkLimits, fetch fetchFunc, guard *sync.RWMutex, progress func(Stat)) *walker {
	w := &walker{lim: lim, fetch: fetch, guard: guard, progress: progress, blocks: make(map[string]seen)}
	w.cond.L = &w.mu
	return w
}

// run walks from root and returns the DAG's Stat and its distinct blocks
// sorted by multihash bytes. It returns when the DAG is walked, on the
// first error, or when ctx ends (with ctx's error).
func (w *walker) run(ctx context.Context, root cid.Cid) (Stat, []blockEntry, error) {
	if !root.Defined() {
		return Stat{}, nil, fmt.Errorf("%w: undefined root CID", ErrInvalid)
	}
	if err := validLink(root); err != nil {
		return Stat{}, nil, err
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWatch := context.AfterFunc(ctx, func() { w.fail(ctx.Err()) })
	defer stopWatch()

	if err := w.discover([]cid.Cid{root}); err != nil {
		return Stat{}, nil, err
	}
	var wg sync.WaitGroup
	for range max(1, w.lim.concurrency) {
		wg.Go(func() { w.work(ctx) })
	}
	wg.Wait()

	w.mu.Lock()
	defer w.mu.Unlock()
	if err := parent.Err(); err != nil {
		return w.done, nil, err // whatever the workers made of it
	}
	if w.err != nil {
		return w.done, nil, w.err
	}
	list := make([]blockEntry, 0, len(w.blocks))
	for k, s := range w.blocks {
		if isIdentityHash([]byte(k)) {
			continue
		}
		list = append(list, blockEntry{mh: k, size: s.size})
	}
	slices.SortFunc(list, func(a, b blockEntry) int { return bytes.Compare([]byte(a.mh), []byte(b.mh)) })
	return w.done, list, nil
}

// holds reports whether the walk has registered multihash key.
func (w *walker) holds(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.blocks[key]
	return ok
}

// fail stops the walk with err unless it already stopped.
func (w *walker) fail(err error) {
	w.mu.Lock()
	w.failLocked(err)
	w.mu.Unlock()
}

func (w *walker) failLocked(err error) {
	if w.err == nil && !w.stop {
		w.err = err
	}
	w.stop = true
	w.cond.Broadcast()
}

// next takes a CID to visit; false means the walk is over.
func (w *walker) next() (cid.Cid, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.stack) == 0 && w.busy > 0 && !w.stop {
		w.cond.Wait()
	}
	if w.stop || len(w.stack) == 0 {
		w.stop = true
		w.cond.Broadcast()
		return cid.Undef, false
	}
	c := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	w.busy++
	return c, true
}

func (w *walker) work(ctx context.Context) {
	for {
		c, ok := w.next()
		if !ok {
			return
		}
		size, links, err := w.visit(ctx, c)
		if err == nil {
			err = w.complete(c, size, links)
		}
		if err != nil {
			w.fail(err)
			return
		}
		w.report()
	}
}

// visit fetches and decodes c and returns its size and links. A decoder
// that panics is reported as ErrMalformed naming c.
func (w *walker) visit(ctx context.Context, c cid.Cid) (size int64, links []cid.Cid, err error) {
	defer func() {
		if r := recover(); r != nil {
			size, links, err = 0, nil, fmt.Errorf("%w: %s: decoder panicked: %v", ErrMalformed, c, r)
		}
	}()
	var ls []*ipld.Link
	if isIdentityHash(c.Hash()) {
		var nd ipld.Node
		if nd, err = decodeIdentity(c); err == nil {
			_, ls, err = nodeInfo(c, nd)
		}
	} else {
		size, ls, err = w.fetch(ctx, c)
	}
	if err != nil {
		return 0, nil, err
	}
	if len(ls) > w.lim.maxLinks {
		return 0, nil, fmt.Errorf("%w: block %s has %d links, limit %d", ErrTooLarge, c, len(ls), w.lim.maxLinks)
	}
	links = make([]cid.Cid, len(ls))
	for i, l := range ls {
		if err := validLink(l.Cid); err != nil {
			return 0, nil, fmt.Errorf("block %s link %d: %w", c, i, err)
		}
		links[i] = l.Cid
	}
	return size, links, nil
}

// discover registers links not seen under their codec and queues them.
func (w *walker) discover(links []cid.Cid) error {
	if w.guard != nil {
		w.guard.RLock()
		defer w.guard.RUnlock()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.discoverLocked(links)
}

func (w *walker) discoverLocked(links []cid.Cid) error {
	for _, l := range links {
		key := string(l.Hash())
		codec := l.Type()
		s, ok := w.blocks[key]
		switch {
		case !ok:
			if int64(len(w.blocks)) >= w.lim.maxBlocks {
				return fmt.Errorf("%w: more than %d blocks", ErrTooLarge, w.lim.maxBlocks)
			}
			w.blocks[key] = seen{size: -1, codecs: []uint64{codec}}
		case slices.Contains(s.codecs, codec):
			continue
		case len(s.codecs) >= maxCodecsPerBlock:
			return fmt.Errorf("%w: %s linked under more than %d codecs", ErrMalformed, l, maxCodecsPerBlock)
		default:
			s.codecs = append(s.codecs, codec)
			w.blocks[key] = s
		}
		w.stack = append(w.stack, l)
		w.cond.Signal()
	}
	return nil
}

// complete records c's size, queues its links and counts it done. An
// error (a limit) stops the walk before the lock is released: once busy
// drops, a waiting worker that finds nothing queued ends the walk, and an
// error recorded after that would be lost (the walk then succeeded over
// its byte limit, about once in 100 runs of TestFetchLimits).
func (w *walker) complete(c cid.Cid, size int64, links []cid.Cid) (err error) {
	if w.guard != nil {
		w.guard.RLock()
		defer w.guard.RUnlock()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	defer func() {
		if err != nil {
			w.failLocked(err)
		}
	}()
	w.busy--
	w.cond.Broadcast()
	if w.stop {
		return nil
	}
	key := string(c.Hash())
	s := w.blocks[key]
	if s.size < 0 {
		s.size = size
		w.blocks[key] = s
		if !isIdentityHash(c.Hash()) {
			w.done.Blocks++
			w.done.Bytes += size
		}
		if w.lim.maxBytes > 0 && w.done.Bytes > w.lim.maxBytes {
			return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, w.lim.maxBytes)
		}
	}
	return w.discoverLocked(links)
}

// report passes the progress so far to the callback, never going back.
func (w *walker) report() {
	if w.progress == nil {
		return
	}
	w.mu.Lock()
	st := w.done
	w.mu.Unlock()
	w.progMu.Lock()
	defer w.progMu.Unlock()
	if st.Blocks > w.reported {
		w.reported = st.Blocks
		w.progress(st)
	}
}

// validLink checks that c is a CID the block service would fetch: a
// defined CID whose hash function is secure enough (boxo's default
// allowlist: sha2, sha3, blake2b/s, blake3, and identity of at most 128
// bytes) with a digest of a sane length.
func validLink(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined CID", ErrMalformed)
	}
	if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, c); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, c, err)
	}
	return nil
}

// isIdentityHash reports whether multihash bytes k use the identity
// function (the data is the digest).
func isIdentityHash(k []byte) bool {
	return len(k) > 0 && k[0] == mh.IDENTITY
}

// decodeIdentity decodes the node inlined in an identity CID. Only raw and
// dag-pb are followed: those are what UnixFS importers inline.
func decodeIdentity(c cid.Cid) (ipld.Node, error) {
	dec, err := mh.Decode(c.Hash())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, c, err)
	}
	blk, err := blocks.NewBlockWithCid(dec.Digest, c)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, c, err)
	}
	var nd ipld.Node
	switch c.Type() {
	case cid.Raw:
		nd, err = merkledag.DecodeRawBlock(blk)
	case cid.DagProtobuf:
		nd, err = merkledag.DecodeProtobufBlock(blk)
	default:
		return nil, fmt.Errorf("%w: %s: identity CID with codec %#x is not followed", ErrMalformed, c, c.Type())
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, c, err)
	}
	return nd, nil
}

// DAGStat walks the DAG under root through dag (so possibly over the
// network: the node's DAG service asks bitswap for blocks it lacks, and
// stores what it receives) and returns its distinct blocks and bytes. It
// is what `curate pin add <cid>` uses to learn a pin's size.
//
// Every block is checked against its CID on the way: bitswap recomputes
// the hash of every block it receives and drops mismatches, and the block
// service refuses CIDs with insecure or unknown hash functions before
// asking anyone. The walk follows at most DefaultFetcherConfig().MaxBlocks
// blocks and MaxLinks links per block, requests up to concurrency blocks at
// once (below 1: the default), and fails on the first block it cannot
// decode with an error naming its CID. ctx bounds the whole walk: a block
// no peer has makes it wait until ctx ends.
func DAGStat(ctx context.Context, dag ipld.DAGService, root cid.Cid, concurrency int) (Stat, error) {
	lim := DefaultFetcherConfig().limits()
	if concurrency >= 1 {
		lim.concurrency = concurrency
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the bitswap session
	ng := merkledag.NewSession(ctx, dag)
	w := newWalker(lim, func(ctx context.Context, c cid.Cid) (int64, []*ipld.Link, error) {
		nd, err := ng.Get(ctx, c)
		if err != nil {
			return 0, nil, fmt.Errorf("get %s: %w", c, err)
		}
		return nodeInfo(c, nd)
	}, nil, nil)
	st, _, err := w.run(ctx, root)
	if err != nil {
		return Stat{}, fmt.Errorf("stat %s: %w", root, err)
	}
	return st, nil
}
