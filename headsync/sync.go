package headsync

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/publish"
	"github.com/pinfold/pinfold/trust"
)

// Datastore keys of the synced state.
var (
	keyNewest   = ds.NewKey("/pinfold/headsync/newest")
	keyRecord   = ds.NewKey("/pinfold/headsync/record")
	verifiedPfx = ds.NewKey("/pinfold/headsync/verified")
)

// Source says where a candidate head came from, for logs and rejections.
type Source string

const (
	FromTopic  Source = "topic"
	FromPeer   Source = "peer"
	FromFile   Source = "record-file"
	FromDHT    Source = "dht"
	FromLocal  Source = "local"
	FromConfig Source = "checkpoint"
)

// Config parameterises a Sync.
type Config struct {
	Rules         trust.Rules
	Checkpoint    cid.Cid // trusted head (genesis or later), from the cluster config
	CheckpointSeq int64
	Name          ipns.Name // the cluster name, for IPNS records
	// FetchTimeout bounds fetching one head block from the network.
	FetchTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Blocks reads blocks, locally or from the network; it must check nothing
// (verification does) but must honour ctx.
type Blocks interface {
	dag.Blocks
}

// Sync holds the newest verified head. Its methods are safe for concurrent
// use; candidates are verified one at a time.
type Sync struct {
	cfg    Config
	ds     ds.Datastore
	blocks Blocks
	log    *slog.Logger
	now    func() time.Time

	verifyMu sync.Mutex // serialises Consider

	mu      sync.Mutex
	newest  *trust.Verified
	record  *publish.Record
	changed chan struct{} // closed and replaced on every change
	rej     rejections
}

// New returns a Sync over datastore d (where the newest head, its record
// and the set of verified heads are kept) and blocks (where head blocks
// are read from and, through a caching block service, stored). It loads
// the state an earlier run left. It starts no goroutines.
func New(ctx context.Context, cfg Config, d ds.Datastore, blocks Blocks, logger *slog.Logger) (*Sync, error) {
	if err := cfg.Rules.Validate(); err != nil {
		return nil, fmt.Errorf("headsync: %w", err)
	}
	if !cfg.Checkpoint.Defined() {
		return nil, errors.New("headsync: config.checkpoint is undefined")
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 30 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sync{cfg: cfg, ds: d, blocks: blocks, log: logger, now: cfg.Now, changed: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	s.rej.max = 64
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Sync) load(ctx context.Context) error {
	b, err := s.ds.Get(ctx, keyNewest)
	if errors.Is(err, ds.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("headsync: load newest head: %w", err)
	}
	c, err := cid.Cast(b)
	if err != nil {
		return fmt.Errorf("headsync: load newest head: %w", err)
	}
	blk, err := s.blocks.Get(ctx, c)
	if err != nil {
		return fmt.Errorf("headsync: load newest head %s: %w", c, err)
	}
	sh, err := dag.DecodeSignedHead(blk.RawData())
	if err != nil {
		return fmt.Errorf("headsync: load newest head %s: %w", c, err)
	}
	s.newest = &trust.Verified{SignedHead: sh, CID: c}
	if raw, err := s.ds.Get(ctx, keyRecord); err == nil {
		// The stored record may have expired while we were down; keep it
		// only if it is still valid.
		if rec, err := publish.ParseRecord(raw, s.cfg.Name, s.now()); err == nil && publish.CheckHead(rec, c, uint64(sh.Head.Seq)) == nil {
			s.record = &rec
		}
	}
	return nil
}

// Newest returns the newest verified head, if any.
func (s *Sync) Newest() (trust.Verified, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.newest == nil {
		return trust.Verified{}, false
	}
	return *s.newest, true
}

// Record returns the best valid IPNS record known for the newest head.
func (s *Sync) Record() (publish.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.record == nil {
		return publish.Record{}, false
	}
	return *s.record, true
}

// Changed returns a channel closed at the next change of the newest head
// or its record.
func (s *Sync) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Announcement returns what this process serves to peers: the newest head
// block and its record.
func (s *Sync) Announcement() (Announcement, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.newest == nil {
		return Announcement{}, false
	}
	data, err := dag.EncodeSignedHead(s.newest.SignedHead)
	if err != nil {
		return Announcement{}, false
	}
	a := Announcement{Head: data}
	if s.record != nil {
		a.Record = s.record.Raw
	}
	return a, true
}

// Outcome says what Consider did with a candidate.
type Outcome int

const (
	Adopted Outcome = iota // the candidate is the new newest head
	Known                  // the candidate is the newest head already (its record may be new)
	Passed                 // verified, but the newest head is preferred
)

func (o Outcome) String() string {
	return [...]string{"adopted", "known", "passed"}[o]
}

// Consider verifies a candidate announcement and adopts its head if it is
// preferred to the newest one. Every rejection is logged and recorded with
// from and the reason; nothing is changed by a rejected candidate.
func (s *Sync) Consider(ctx context.Context, a Announcement, src Source, from peer.ID) (Outcome, error) {
	out, err := s.consider(ctx, a, src)
	if err != nil {
		s.reject(src, from, err)
		return out, err
	}
	return out, nil
}

func (s *Sync) consider(ctx context.Context, a Announcement, src Source) (Outcome, error) {
	s.verifyMu.Lock()
	defer s.verifyMu.Unlock()
	now := s.now()

	var rec *publish.Record
	if len(a.Record) > 0 {
		r, err := publish.ParseRecord(a.Record, s.cfg.Name, now)
		if err != nil {
			return 0, fmt.Errorf("record: %w", err)
		}
		rec = &r
	}
	var headCID cid.Cid
	switch {
	case len(a.Head) > 0:
		headCID = dag.CID(a.Head)
		if len(a.Head) > dag.MaxBlockSize {
			return 0, fmt.Errorf("head %s: %w", headCID, dag.ErrTooLarge)
		}
		// Store the block so the chain walk (and peers) find it locally.
		if err := s.blocks.Put(ctx, dag.NewBlock(a.Head)); err != nil {
			return 0, fmt.Errorf("store head %s: %w", headCID, err)
		}
	case rec != nil:
		headCID = rec.Head
	default:
		return 0, fmt.Errorf("%w: neither head nor record", ErrMalformed)
	}
	if rec != nil && !rec.Head.Equals(headCID) {
		return 0, fmt.Errorf("record names %s but the announced head is %s: %w", rec.Head, headCID, publish.ErrHeadMismatch)
	}

	cur, have := s.Newest()
	if have && cur.CID.Equals(headCID) {
		return Known, s.offerRecord(ctx, rec, cur)
	}
	if have && len(a.Head) > 0 {
		// A replayed older head is refused before any chain walk.
		if sh, err := dag.DecodeSignedHead(a.Head); err != nil {
			return 0, fmt.Errorf("head %s: %w", headCID, err)
		} else if sh.Head.Seq < cur.Head.Seq {
			return 0, fmt.Errorf("head %s: %w: seq %d is older than the newest head %s (seq %d)",
				headCID, trust.ErrStaleSeq, sh.Head.Seq, cur.CID, cur.Head.Seq)
		}
	}
	v, descends, err := s.verify(ctx, headCID, now)
	if err != nil {
		return 0, err
	}
	if have && !descends && v.Head.Seq < cur.Head.Seq {
		return 0, fmt.Errorf("head %s: %w: seq %d is older than the newest head %s (seq %d)",
			v.CID, trust.ErrStaleSeq, v.Head.Seq, cur.CID, cur.Head.Seq)
	}
	if have && !descends {
		if ferr := trust.CheckFork(cur, v); ferr != nil {
			s.log.Error("curator equivocation", "err", ferr)
			s.reject(src, "", ferr)
		}
		if trust.Prefer(cur, v).CID.Equals(cur.CID) {
			return Passed, nil
		}
	}
	if err := s.adopt(ctx, v); err != nil {
		return 0, err
	}
	s.log.Info("new head", "cid", v.CID, "seq", v.Head.Seq, "signer", peer.ID(v.Sig.Signer), "source", src)
	return Adopted, s.offerRecord(ctx, rec, v)
}

// verify verifies head c against the nearest head already verified (or the
// checkpoint), and reports whether c descends from the newest head.
func (s *Sync) verify(ctx context.Context, c cid.Cid, now time.Time) (trust.Verified, bool, error) {
	get := s.getter(ctx)
	cur, have := s.Newest()
	// Walk back from c to a head verified before (or the checkpoint).
	var anchor cid.Cid
	descends := false
	walk := c
	for i := 0; ; i++ {
		if i > s.cfg.Rules.MaxChain && s.cfg.Rules.MaxChain > 0 || i > trust.DefaultMaxChain {
			return trust.Verified{}, false, fmt.Errorf("head %s: %w", c, trust.ErrChainTooLong)
		}
		if have && walk.Equals(cur.CID) {
			descends = true
		}
		if walk.Equals(s.cfg.Checkpoint) || s.isVerified(ctx, walk) {
			anchor = walk
			break
		}
		data, err := get(walk)
		if err != nil {
			return trust.Verified{}, false, fmt.Errorf("head %s: %w", c, err)
		}
		sh, err := dag.DecodeSignedHead(data)
		if err != nil {
			return trust.Verified{}, false, fmt.Errorf("head %s: %w", walk, err)
		}
		if sh.Head.Seq < s.cfg.CheckpointSeq || sh.Head.Parent == nil {
			return trust.Verified{}, false, fmt.Errorf("head %s: %w: its chain does not pass through checkpoint %s (seq %d)",
				c, trust.ErrNotDescendant, s.cfg.Checkpoint, s.cfg.CheckpointSeq)
		}
		walk = *sh.Head.Parent
	}
	if anchor.Equals(c) {
		// The candidate is the checkpoint itself (or verified before).
		data, err := get(c)
		if err != nil {
			return trust.Verified{}, false, fmt.Errorf("head %s: %w", c, err)
		}
		var v trust.Verified
		if c.Equals(s.cfg.Checkpoint) && s.cfg.CheckpointSeq == 0 {
			if v, err = trust.VerifyHead(s.cfg.Rules, nil, data, now); err != nil {
				return trust.Verified{}, false, err
			}
		} else {
			sh, err := dag.DecodeSignedHead(data)
			if err != nil {
				return trust.Verified{}, false, fmt.Errorf("head %s: %w", c, err)
			}
			v = trust.Verified{SignedHead: sh, CID: c}
		}
		if err := s.markVerified(ctx, v); err != nil {
			return trust.Verified{}, false, err
		}
		return v, descends, nil
	}
	from := anchor
	if anchor.Equals(s.cfg.Checkpoint) && s.cfg.CheckpointSeq == 0 && !s.isVerified(ctx, anchor) {
		// Verify from genesis itself: VerifyChain checks it against Rules.Trust.
		from = cid.Undef
	}
	heads, err := trust.VerifyChain(s.cfg.Rules, from, c, get, now)
	if err != nil {
		return trust.Verified{}, false, err
	}
	for _, h := range heads {
		if err := s.markVerified(ctx, h); err != nil {
			return trust.Verified{}, false, err
		}
	}
	return heads[len(heads)-1], descends, nil
}

func (s *Sync) getter(ctx context.Context) trust.Getter {
	return func(c cid.Cid) ([]byte, error) {
		fctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
		defer cancel()
		b, err := s.blocks.Get(fctx, c)
		if err != nil {
			return nil, err
		}
		return b.RawData(), nil
	}
}

func verifiedKey(c cid.Cid) ds.Key { return verifiedPfx.ChildString(c.String()) }

func (s *Sync) isVerified(ctx context.Context, c cid.Cid) bool {
	ok, err := s.ds.Has(ctx, verifiedKey(c))
	return err == nil && ok
}

func (s *Sync) markVerified(ctx context.Context, v trust.Verified) error {
	var buf [binary.MaxVarintLen64]byte
	n := binary.PutVarint(buf[:], v.Head.Seq)
	if err := s.ds.Put(ctx, verifiedKey(v.CID), buf[:n]); err != nil {
		return fmt.Errorf("record verified head %s: %w", v.CID, err)
	}
	return nil
}

func (s *Sync) adopt(ctx context.Context, v trust.Verified) error {
	if err := s.ds.Put(ctx, keyNewest, v.CID.Bytes()); err != nil {
		return fmt.Errorf("record newest head %s: %w", v.CID, err)
	}
	if err := s.ds.Sync(ctx, keyNewest); err != nil {
		return fmt.Errorf("record newest head %s: %w", v.CID, err)
	}
	s.mu.Lock()
	s.newest = &v
	if s.record != nil && !s.record.Head.Equals(v.CID) {
		s.record = nil
	}
	s.notifyLocked()
	s.mu.Unlock()
	return nil
}

// offerRecord keeps rec if it names v and beats the record held.
func (s *Sync) offerRecord(ctx context.Context, rec *publish.Record, v trust.Verified) error {
	if rec == nil {
		return nil
	}
	if err := publish.CheckHead(*rec, v.CID, uint64(v.Head.Seq)); err != nil {
		return err
	}
	s.mu.Lock()
	keep := s.newest != nil && s.newest.CID.Equals(v.CID) && (s.record == nil || publish.Compare(*rec, *s.record) > 0)
	s.mu.Unlock()
	if !keep {
		return nil
	}
	if err := s.ds.Put(ctx, keyRecord, rec.Raw); err != nil {
		return fmt.Errorf("store record: %w", err)
	}
	s.mu.Lock()
	s.record = rec
	s.notifyLocked()
	s.mu.Unlock()
	return nil
}

func (s *Sync) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Stored returns the newest head recorded in d by an earlier Sync, without
// verifying anything: for offline tools reading their own datastore.
func Stored(ctx context.Context, d ds.Datastore) (cid.Cid, error) {
	b, err := d.Get(ctx, keyNewest)
	if err != nil {
		return cid.Undef, fmt.Errorf("read newest head: %w", err)
	}
	c, err := cid.Cast(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("read newest head: %w", err)
	}
	return c, nil
}
