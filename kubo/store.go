package kubo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/content"
)

// maxPinName is kubo's limit on a pin name, in bytes.
const maxPinName = 255

// StoreConfig shapes a Store. Fields that are zero take the defaults
// their comments give.
type StoreConfig struct {
	// Name is the name of every pin the Store makes, so a user sees in
	// `ipfs pin ls --names` which pins are pinfold's; Release removes only
	// pins with this name. Required; at most 255 bytes.
	Name string

	// Peers returns the peers that may serve the content (the follower's
	// cluster peers: curators and other holders). Fetch has kubo connect
	// to up to MaxPeers of them, in the order given. nil: none, kubo
	// finds providers itself if its routing can.
	Peers func() []peer.AddrInfo

	// MaxPeers bounds the peers Fetch connects kubo to. Default: 16.
	MaxPeers int

	// ConnectTimeout bounds one swarm connect. Default: 10s.
	ConnectTimeout time.Duration

	// ConnectInterval is how often Fetch connects kubo to Peers again
	// (and after any stall). Default: 30s.
	ConnectInterval time.Duration

	// StallTimeout fails a pin add whose progress has not moved for that
	// long, with ErrStalled; kubo keeps the blocks it has, so the next
	// Fetch resumes. Default: 1m.
	StallTimeout time.Duration

	// Now is the clock for ConnectInterval. Default: time.Now.
	Now func() time.Time
}

func (c StoreConfig) withDefaults() StoreConfig {
	if c.MaxPeers <= 0 {
		c.MaxPeers = 16
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.ConnectInterval <= 0 {
		c.ConnectInterval = 30 * time.Second
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Store keeps pins in a kubo daemon, with the same methods as the
// embedded store (content.Fetcher) that a follower uses: Fetch, Kept,
// Release and Usage. Its methods are safe for concurrent use; each blocks
// on the daemon's RPC API until ctx ends.
type Store struct {
	c   *Client
	cfg StoreConfig

	mu          sync.Mutex
	loaded      bool                     // pins holds every pin of ours kubo had at Load
	pins        map[cid.Cid]content.Stat // our pins and their DAG sizes
	lastConnect time.Time
	connectErr  error // of the last round of swarm connects, if every one failed
}

// NewStore returns a Store of pins in c's daemon. It does no I/O.
func NewStore(c *Client, cfg StoreConfig) (*Store, error) {
	if cfg.Name == "" || len(cfg.Name) > maxPinName {
		return nil, fmt.Errorf("%w: pin name %q: want 1 to %d bytes", ErrInvalid, cfg.Name, maxPinName)
	}
	return &Store{c: c, cfg: cfg.withDefaults(), pins: map[cid.Cid]content.Stat{}}, nil
}

// Name returns the name the Store gives its pins.
func (s *Store) Name() string { return s.cfg.Name }

// Load checks that the daemon answers and learns the pins carrying the
// Store's name and their sizes (a dag stat of each: it reads every block
// of each DAG in kubo's store once). Usage calls it the first time; call
// it at start to find an unreachable daemon early.
func (s *Store) Load(ctx context.Context) error {
	var ours []cid.Cid
	err := s.c.PinLsAll(ctx, s.cfg.Name, func(p Pin) error {
		if p.Name == s.cfg.Name { // the filter matches substrings
			ours = append(ours, p.CID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load pins named %q: %w", s.cfg.Name, err)
	}
	for _, c := range ours {
		if _, err := s.stat(ctx, c, true); err != nil {
			return fmt.Errorf("load pins named %q: %w", s.cfg.Name, err)
		}
	}
	s.mu.Lock()
	s.loaded = true
	s.mu.Unlock()
	return nil
}

// stat returns root's DAG size, from memory or by dag stat; with ours it
// remembers the size as one of the Store's pins.
func (s *Store) stat(ctx context.Context, root cid.Cid, ours bool) (content.Stat, error) {
	s.mu.Lock()
	st, ok := s.pins[root]
	s.mu.Unlock()
	if ok {
		return st, nil
	}
	ds, err := s.c.DAGStat(ctx, root)
	if err != nil {
		return content.Stat{}, err
	}
	st = content.Stat{Blocks: ds.Blocks, Bytes: ds.Bytes}
	if ours {
		s.mu.Lock()
		s.pins[root] = st
		s.mu.Unlock()
	}
	return st, nil
}

// Fetch pins root's whole DAG in kubo and returns its size (dag stat:
// distinct blocks and their bytes). A root kubo has pinned already
// returns at once, and a pin the user made keeps its name. Otherwise Fetch
// first connects kubo to the configured peers (at most once per
// ConnectInterval), then runs pin add under the Store's name, calling
// progress (if not nil, never concurrently) with the blocks kubo has
// processed: kubo reports blocks, not bytes, so Bytes stays 0 until the
// final call with the DAG's size. A pin add that makes no progress for
// StallTimeout fails with ErrStalled; the blocks kubo fetched stay, so
// the next Fetch resumes from them.
func (s *Store) Fetch(ctx context.Context, root cid.Cid, progress func(content.Stat)) (content.Stat, error) {
	if !root.Defined() {
		return content.Stat{}, fmt.Errorf("fetch: %w: undefined CID", ErrInvalid)
	}
	pins, err := s.c.PinLs(ctx, []cid.Cid{root})
	if err != nil {
		return content.Stat{}, fmt.Errorf("fetch %s: %w", root, err)
	}
	if p, ok := pins[root]; ok {
		st, err := s.stat(ctx, root, p.Name == s.cfg.Name)
		if err != nil {
			return content.Stat{}, fmt.Errorf("fetch %s: %w", root, err)
		}
		return st, nil
	}
	s.connect(ctx)
	if err := s.pinAdd(ctx, root, progress); err != nil {
		return content.Stat{}, fmt.Errorf("fetch %s: %w", root, err)
	}
	// Trust the daemon's pin list, not only pin add's reply.
	pins, err = s.c.PinLs(ctx, []cid.Cid{root})
	if err != nil {
		return content.Stat{}, fmt.Errorf("fetch %s: %w", root, err)
	}
	p, ok := pins[root]
	if !ok {
		return content.Stat{}, fmt.Errorf("fetch %s: %w after pin add", root, ErrNotPinned)
	}
	st, err := s.stat(ctx, root, p.Name == s.cfg.Name)
	if err != nil {
		return content.Stat{}, fmt.Errorf("fetch %s: %w", root, err)
	}
	if progress != nil {
		progress(st)
	}
	return st, nil
}

// pinAdd runs pin add, cancelling it when its progress stalls.
func (s *Store) pinAdd(ctx context.Context, root cid.Cid, progress func(content.Stat)) error {
	stall := s.cfg.StallTimeout
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(stall, func() { cancel(ErrStalled) })
	defer timer.Stop()
	last := int64(-1)
	err := s.c.PinAdd(pctx, root, s.cfg.Name, func(blocks int64) {
		if blocks <= last {
			return
		}
		last = blocks
		timer.Reset(stall)
		if progress != nil {
			progress(content.Stat{Blocks: blocks})
		}
	})
	if err == nil {
		return nil
	}
	if ctx.Err() == nil && errors.Is(context.Cause(pctx), ErrStalled) {
		s.mu.Lock()
		s.lastConnect = time.Time{} // connect again before the next try
		cerr := s.connectErr
		s.mu.Unlock()
		if cerr != nil {
			return fmt.Errorf("%w: no block for %s after %d (connecting to peers: %v)", ErrStalled, stall, max(last, 0), cerr)
		}
		return fmt.Errorf("%w: no block for %s after %d", ErrStalled, stall, max(last, 0))
	}
	return err
}

// connect has kubo connect to the configured peers when ConnectInterval
// has passed since the last round. Failures are kept for the stall error:
// the content may well come from peers kubo is connected to already.
func (s *Store) connect(ctx context.Context) {
	if s.cfg.Peers == nil {
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	due := s.lastConnect.IsZero() || now.Sub(s.lastConnect) >= s.cfg.ConnectInterval
	if due {
		s.lastConnect = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	peers := s.cfg.Peers()
	peers = peers[:min(len(peers), s.cfg.MaxPeers)]
	var errs []error
	ok := 0
	for _, ai := range peers {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
		err := s.c.SwarmConnect(cctx, ai)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ok++
	}
	s.mu.Lock()
	s.connectErr = nil
	if ok == 0 && len(errs) > 0 {
		s.connectErr = errors.Join(errs...)
	}
	s.mu.Unlock()
}

// Kept reports whether kubo has root pinned recursively (by the Store or
// by anyone), with its DAG's size.
func (s *Store) Kept(ctx context.Context, root cid.Cid) (bool, content.Stat, error) {
	if !root.Defined() {
		return false, content.Stat{}, fmt.Errorf("kept: %w: undefined CID", ErrInvalid)
	}
	pins, err := s.c.PinLs(ctx, []cid.Cid{root})
	if err != nil {
		return false, content.Stat{}, fmt.Errorf("kept %s: %w", root, err)
	}
	p, ok := pins[root]
	if !ok {
		s.forget(root)
		return false, content.Stat{}, nil
	}
	st, err := s.stat(ctx, root, p.Name == s.cfg.Name)
	if err != nil {
		return false, content.Stat{}, fmt.Errorf("kept %s: %w", root, err)
	}
	return true, st, nil
}

func (s *Store) forget(root cid.Cid) {
	s.mu.Lock()
	delete(s.pins, root)
	s.mu.Unlock()
}

// Release unpins root if the pin carries the Store's name and returns the
// bytes of the DAG it no longer pins (0 when it did not know its size).
// kubo's garbage collector deletes the blocks no pin needs; pinfold does
// not run it. A pin with another name (the user's own) is left alone, and
// releasing a root that is not pinned is harmless.
func (s *Store) Release(ctx context.Context, root cid.Cid) (int64, error) {
	if !root.Defined() {
		return 0, fmt.Errorf("release: %w: undefined CID", ErrInvalid)
	}
	pins, err := s.c.PinLs(ctx, []cid.Cid{root})
	if err != nil {
		return 0, fmt.Errorf("release %s: %w", root, err)
	}
	p, ok := pins[root]
	if !ok || p.Name != s.cfg.Name {
		s.forget(root)
		return 0, nil
	}
	if err := s.c.PinRm(ctx, root); err != nil {
		return 0, fmt.Errorf("release %s: %w", root, err)
	}
	s.mu.Lock()
	st := s.pins[root]
	delete(s.pins, root)
	s.mu.Unlock()
	return st.Bytes, nil
}

// Usage returns the sum of the DAG sizes of the Store's pins (blocks
// shared by two pins count twice). kubo may hold other data: that is not
// counted. The first call runs Load; later calls read memory.
func (s *Store) Usage(ctx context.Context) (content.Stat, error) {
	s.mu.Lock()
	loaded := s.loaded
	s.mu.Unlock()
	if !loaded {
		if err := s.Load(ctx); err != nil {
			return content.Stat{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var u content.Stat
	for _, st := range s.pins {
		u.Blocks += st.Blocks
		u.Bytes += st.Bytes
	}
	return u, nil
}
