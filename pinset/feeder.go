package pinset

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	crdt "github.com/ipfs/go-ds-crdt"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// feeder is the crdt.Broadcaster given to go-ds-crdt. It is the only way
// heads reach go-ds-crdt, and it decides which:
//
//   - heads from the topic, whose signed author is trusted (checked again
//     here after the topic validator);
//   - heads fed by the owner (Feed, WaitFor), taken from verified signed
//     heads;
//   - blocks where an earlier walk stopped (see review).
//
// Every such head is "watched" until a walk over local bookkeeping shows
// that it and all its ancestors are processed; the watch list is persisted,
// so walks cut short by a crash resume at the next Open.
//
// Broadcast publishes on a writer and drops on a follower: a follower
// never announces anything, not even go-ds-crdt's periodic rebroadcast.
type feeder struct {
	s       *Set
	topic   *pubsub.Topic
	sub     *pubsub.Subscription
	trusted func(peer.ID) bool
	writer  bool
	log     *slog.Logger

	// ctx is the broadcaster's context: cancelled by stop, which Close
	// calls before closing go-ds-crdt.
	ctx        context.Context
	cancel     context.CancelFunc
	started    chan struct{} // closed by start, when Open has finished
	readerDone chan struct{} // closed when the subscription reader exits
	readerOn   bool

	mu       sync.Mutex
	queue    []cid.Cid            // to hand to go-ds-crdt, in order
	queued   map[cid.Cid]struct{} // members of queue
	watch    map[cid.Cid]*watched // roots not yet known complete
	wake     chan struct{}        // capacity 1: something was queued
	progress chan struct{}        // closed and replaced after every review
	// walking is set when Next hands heads to go-ds-crdt and cleared by
	// the review at the start of the next call to Next, which go-ds-crdt
	// makes only once those heads were walked. holds counts Snapshot
	// callers: while it is positive, Next hands nothing out.
	walking bool
	holds   int
	// begun holds the watched roots that were handed out (or left
	// over by the previous session) and may have been merged in part: a
	// walk that stopped below them leaves merged deltas no CRDT head
	// covers. Review forgets a root once it is complete or unprocessed.
	begun map[cid.Cid]struct{}

	untrusted atomic.Uint64
	malformed atomic.Uint64
	dropped   atomic.Uint64
}

// watched is the retry state of a watched root.
type watched struct {
	attempts  int       // hand-overs by review since the last progress
	notBefore time.Time // no hand-over by review before this
	frontier  cid.Cid   // first frontier block seen at the last review
	headFix   bool      // frontier blocks were fed: the root may need to become a head
}

var _ crdt.Broadcaster = (*feeder)(nil)

func newFeeder(ctx context.Context, s *Set, topic *pubsub.Topic, trusted func(peer.ID) bool) (*feeder, error) {
	f := &feeder{
		s:          s,
		topic:      topic,
		trusted:    trusted,
		writer:     s.cfg.Writer,
		log:        s.log,
		started:    make(chan struct{}),
		readerDone: make(chan struct{}),
		queued:     make(map[cid.Cid]struct{}),
		watch:      make(map[cid.Cid]*watched),
		begun:      make(map[cid.Cid]struct{}),
		wake:       make(chan struct{}, 1),
		progress:   make(chan struct{}),
	}
	if err := f.loadPending(ctx); err != nil {
		return nil, err
	}
	if topic != nil {
		sub, err := topic.Subscribe()
		if err != nil {
			return nil, err
		}
		f.sub = sub
	}
	// The broadcaster outlives Open's ctx: it lives until Close.
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f, nil
}

func (f *feeder) pendingKey(c cid.Cid) ds.Key {
	return f.s.ns.ChildString("sync").ChildString("p").ChildString(c.String())
}

// loadPending restores the watch list of the previous session.
func (f *feeder) loadPending(ctx context.Context) error {
	prefix := f.s.ns.ChildString("sync").ChildString("p")
	res, err := f.s.store.Query(ctx, query.Query{Prefix: prefix.String(), KeysOnly: true})
	if err != nil {
		return err
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return r.Error
		}
		c, err := cid.Decode(ds.RawKey(r.Key).BaseNamespace())
		if err != nil || !IsHeadCID(c) {
			continue // not ours; leave it
		}
		f.watch[c] = &watched{}
		f.begun[c] = struct{}{} // its walk may have been cut short
	}
	return nil
}

// start lets go-ds-crdt receive heads and starts the subscription reader.
func (f *feeder) start() {
	close(f.started)
	if f.sub != nil {
		f.readerOn = true
		go f.read()
	}
}

// stop cancels the broadcaster; the reader and Next return soon after.
func (f *feeder) stop() {
	f.cancel()
	if f.sub != nil && !f.readerOn {
		f.sub.Cancel()
	}
}

// wait waits for the reader goroutine, if it was started.
func (f *feeder) wait() {
	if f.readerOn {
		<-f.readerDone
	}
}

// read is the subscription reader. It exits when the broadcaster's
// context is cancelled.
func (f *feeder) read() {
	defer close(f.readerDone)
	defer f.sub.Cancel()
	for {
		msg, err := f.sub.Next(f.ctx)
		if err != nil {
			return
		}
		if msg.Local {
			continue // our own broadcast: go-ds-crdt processed it when it was made
		}
		from := msg.GetFrom()
		if len(msg.GetSignature()) == 0 || !f.trusted(from) {
			f.untrusted.Add(1)
			f.log.Warn("pinset: dropped CRDT broadcast from untrusted author", "author", from, "via", msg.ReceivedFrom)
			continue
		}
		heads, err := decodeBroadcast(msg.GetData(), f.s.cfg.MaxBroadcastBytes, f.s.cfg.MaxBroadcastHeads)
		if err != nil {
			f.malformed.Add(1)
			f.log.Warn("pinset: dropped malformed CRDT broadcast", "author", from, "err", err)
			continue
		}
		if err := f.add(f.ctx, heads); err != nil {
			f.dropped.Add(1)
			f.log.Debug("pinset: dropped CRDT broadcast", "author", from, "err", err)
		}
	}
}

// add watches and queues heads that are not known complete. It fails with
// ErrBusy, adding nothing, if the watch list would exceed MaxPending.
func (f *feeder) add(ctx context.Context, heads []cid.Cid) error {
	var todo []cid.Cid
	for _, h := range heads {
		done, err := f.s.isDone(ctx, h)
		if err != nil {
			return err
		}
		if !done {
			todo = append(todo, h)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fresh := 0
	for _, h := range todo {
		if _, ok := f.watch[h]; !ok {
			fresh++
		}
	}
	if len(f.watch)+fresh > f.s.cfg.MaxPending {
		return ErrBusy
	}
	for _, h := range todo {
		if _, ok := f.watch[h]; !ok {
			// Persist before go-ds-crdt can start on it, so a crash
			// mid-walk leaves a trace for the next Open.
			if err := f.s.store.Put(ctx, f.pendingKey(h), nil); err != nil {
				return err
			}
			f.watch[h] = &watched{}
		}
		f.enqueueLocked(h)
	}
	return nil
}

func (f *feeder) enqueueLocked(c cid.Cid) {
	if _, ok := f.queued[c]; ok {
		return
	}
	f.queued[c] = struct{}{}
	f.queue = append(f.queue, c)
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *feeder) pendingCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watch)
}

// progressCh returns a channel closed after the next review.
func (f *feeder) progressCh() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.progress
}

// Broadcast is called by go-ds-crdt with its new or re-announced heads.
func (f *feeder) Broadcast(ctx context.Context, data []byte) error {
	if !f.writer || f.topic == nil {
		return nil
	}
	if err := f.topic.Publish(ctx, data); err != nil {
		// The delta is stored and merged; the periodic rebroadcast or a
		// signed head will announce it. Failing here would fail the Add.
		f.log.Warn("pinset: publish CRDT heads failed", "err", err)
	}
	return nil
}

// Next is called by go-ds-crdt's single handleNext goroutine whenever it
// is idle: with MultiHeadProcessing off, it walks the heads of one
// broadcast to the end before it asks for the next. So when Next runs, no
// walk started by handleNext is in progress, and review can tell a walk
// that stopped early (a block it could not fetch, a crash) from one still
// running.
func (f *feeder) Next(ctx context.Context) ([]byte, error) {
	select {
	case <-f.started:
	case <-ctx.Done():
		return nil, crdt.ErrNoMoreBroadcast
	case <-f.ctx.Done():
		return nil, crdt.ErrNoMoreBroadcast
	}
	for {
		if ctx.Err() != nil || f.ctx.Err() != nil {
			return nil, crdt.ErrNoMoreBroadcast
		}
		retry := f.review(ctx)
		if heads := f.pop(); len(heads) > 0 {
			data, err := encodeBroadcast(heads)
			if err == nil {
				return data, nil
			}
			f.log.Error("pinset: encode heads", "err", err)
			continue
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if retry > 0 {
			timer = time.NewTimer(retry)
			fire = timer.C
		}
		select {
		case <-f.wake:
		case <-fire:
		case <-ctx.Done():
		case <-f.ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// pop takes up to MaxBroadcastHeads heads off the queue; nothing while
// a Snapshot holds the walks back.
func (f *feeder) pop() []cid.Cid {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := min(len(f.queue), f.s.cfg.MaxBroadcastHeads)
	if n == 0 || f.holds > 0 {
		return nil
	}
	f.walking = true
	heads := make([]cid.Cid, n)
	copy(heads, f.queue)
	f.queue = append(f.queue[:0], f.queue[n:]...)
	for _, h := range heads {
		delete(f.queued, h)
		if _, ok := f.watch[h]; ok {
			f.begun[h] = struct{}{}
		}
	}
	return heads
}

// review walks every watched root (over local bookkeeping only) and:
//
//   - forgets it when it is complete;
//   - queues it again when it is not processed (its own fetch failed);
//   - when it is processed but blocks below it are not (the walk stopped
//     at a block it could not fetch, or a crash cut it short), queues
//     those frontier blocks: go-ds-crdt walks each down to the processed
//     part, so nothing already merged is merged again. Such a walk leaves
//     the frontier block as a head instead of the root; once the root is
//     complete, if it is not a head, review un-marks the root alone and
//     queues it, so go-ds-crdt re-merges that one block (idempotent) and
//     makes the root a head again, which a writer needs for its next delta.
//
// Hand-overs by review back off exponentially (RetryMin..RetryMax) while
// a root makes no progress. review returns how long until the next
// back-off expires, or 0 if none is waiting.
func (f *feeder) review(ctx context.Context) time.Duration {
	defer f.signal()
	f.mu.Lock()
	roots := make([]cid.Cid, 0, len(f.watch))
	for c := range f.watch {
		if _, q := f.queued[c]; !q {
			roots = append(roots, c)
		}
	}
	f.mu.Unlock()

	var next time.Duration
	now := time.Now()
	for _, root := range roots {
		res, err := f.s.walk(ctx, root, f.s.cfg.MaxBroadcastHeads)
		if ctx.Err() != nil || f.ctx.Err() != nil {
			return 0
		}
		f.mu.Lock()
		w := f.watch[root]
		if w == nil {
			f.mu.Unlock()
			continue
		}
		switch {
		case err != nil:
			f.log.Warn("pinset: cannot check CRDT head", "head", root, "err", err)
			w.attempts++
			w.notBefore = now.Add(f.backoff(w.attempts))
		case res.complete && w.headFix && !f.s.isHead(root):
			w.headFix = false
			if err := f.s.unmark(ctx, root); err != nil {
				f.log.Warn("pinset: cannot re-queue CRDT head", "head", root, "err", err)
			} else {
				f.enqueueLocked(root)
			}
		case res.complete:
			delete(f.watch, root)
			delete(f.begun, root)
			if err := f.s.store.Delete(ctx, f.pendingKey(root)); err != nil {
				f.log.Warn("pinset: cannot clear pending head", "head", root, "err", err)
			}
		default:
			if len(res.frontier) > 0 && res.frontier[0] != w.frontier {
				w.frontier = res.frontier[0]
				w.attempts = 0 // progress since the last review
				w.notBefore = time.Time{}
			}
			if now.Before(w.notBefore) {
				break
			}
			w.attempts++
			w.notBefore = now.Add(f.backoff(w.attempts))
			if !res.processed {
				delete(f.begun, root) // nothing of it was merged
			}
			if !res.processed || len(res.frontier) == 0 {
				f.enqueueLocked(root)
			} else {
				w.headFix = true
				for _, c := range res.frontier {
					f.enqueueLocked(c)
				}
				f.log.Info("pinset: resuming CRDT walk", "head", root, "at", res.frontier[0], "blocks", len(res.frontier))
			}
		}
		if d := w.notBefore.Sub(now); d > 0 && (next == 0 || d < next) {
			if _, q := f.queued[root]; !q {
				next = d
			}
		}
		f.mu.Unlock()
	}
	return next
}

// backoff is the wait after hand-over attempt n (n >= 1) before the next:
// RetryMin doubling up to RetryMax. The first attempt after a stall is
// immediate.
func (f *feeder) backoff(n int) time.Duration {
	d := f.s.cfg.RetryMin
	for i := 1; i < n && d < f.s.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, f.s.cfg.RetryMax)
}

// signal wakes everyone waiting for progress. It runs at the end of each
// review, so no walk is in progress until Next hands out more heads.
func (f *feeder) signal() {
	f.mu.Lock()
	f.walking = false
	close(f.progress)
	f.progress = make(chan struct{})
	f.mu.Unlock()
}
