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
	// FetchTimeout bounds fetching the missing blocks of one candidate
	// from peers (each request to one peer is bounded by
	// Limits.AskTimeout). Default: 30s.
	FetchTimeout time.Duration
	// Limits bound a candidate's quarantine and the candidates fetching
	// at once; zero fields take DefaultLimits.
	Limits Limits
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Blocks is the local block store of verified heads: Get must not fetch
// from the network (candidates fetch through their quarantine) and must
// honour ctx; it need check nothing (verification does).
type Blocks interface {
	dag.Blocks
}

// Sync holds the newest verified head. Its methods are safe for concurrent
// use. Candidates are checked and fetched concurrently; only adopting one
// (local writes, no network) is serialised.
type Sync struct {
	cfg    Config
	ds     ds.Datastore
	blocks Blocks
	log    *slog.Logger
	now    func() time.Time
	budget budget

	adoptMu sync.Mutex // serialises the commit of verified candidates; never held across the network

	mu      sync.Mutex
	newest  *trust.Verified
	record  *publish.Record
	changed chan struct{} // closed and replaced on every change
	rej     rejections
	fetch   fetcher // set by Attach; nil: candidates cannot fetch
}

// New returns a Sync over datastore d (where the newest head, its record
// and the set of verified heads are kept) and blocks (the local block
// store, where verified head blocks are kept and read from). It loads the
// state an earlier run left. It starts no goroutines.
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
	cfg.Limits = cfg.Limits.withDefaults()
	s := &Sync{cfg: cfg, ds: d, blocks: blocks, log: logger, now: cfg.Now, changed: make(chan struct{}),
		budget: budget{perPeer: cfg.Limits.PerPeer, total: cfg.Limits.InFlight}}
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
