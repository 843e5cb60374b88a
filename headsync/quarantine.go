package headsync

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
)

// MaxHeadSize bounds one head block fetched for a candidate. A signed head
// that decodes is at most about 3 KiB (a trust set of dag.MaxTrust keys);
// anything larger is junk, refused before it costs more.
const MaxHeadSize = 16 << 10

// Errors of the candidate pipeline.
var (
	// ErrBusy refuses a candidate that needs blocks fetched while its peer
	// (or the node) already has as many candidates fetching as Limits allow.
	ErrBusy = errors.New("headsync: too many candidates in flight")
	// ErrQuarantineFull refuses a candidate whose missing chain does not
	// fit its quarantine (Limits.MaxBlocks, Limits.MaxBytes).
	ErrQuarantineFull = errors.New("headsync: candidate chain over its quarantine bound")
	// ErrUnavailable refuses a candidate whose missing blocks no peer asked
	// would send.
	ErrUnavailable = errors.New("headsync: blocks of the candidate unavailable")
)

// Limits bound what one candidate head can cost before it verifies.
// Blocks fetched for a candidate (its head, when only a record named it,
// and its missing parents) are held in memory, in the candidate's
// quarantine, and reach the block store only once the head they lead to
// verifies; a refused candidate's quarantine is dropped.
type Limits struct {
	// MaxBlocks and MaxBytes bound one candidate's quarantine. A node more
	// than MaxBlocks heads behind cannot verify a new head in one step.
	// Defaults: 8192 heads (more than five days of one head a minute),
	// 16 MiB (typical heads are under 1 KiB).
	MaxBlocks int
	MaxBytes  int
	// PerPeer bounds the candidates announced by one peer that fetch at
	// once; InFlight bounds them over all peers. Defaults: 1, 4.
	PerPeer  int
	InFlight int
	// AskTimeout bounds one request for a chain of heads to one peer;
	// AskPeers is how many peers are asked for it, the announcing peer
	// first. Defaults: 2s, 3.
	AskTimeout time.Duration
	AskPeers   int
}

// DefaultLimits returns the limits every zero field of Config.Limits
// takes.
func DefaultLimits() Limits {
	return Limits{MaxBlocks: 8192, MaxBytes: 16 << 20, PerPeer: 1, InFlight: 4, AskTimeout: 2 * time.Second, AskPeers: 3}
}

// withDefaults fills the zero fields of l.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	for _, f := range []struct{ v, def *int }{{&l.MaxBlocks, &d.MaxBlocks}, {&l.MaxBytes, &d.MaxBytes},
		{&l.PerPeer, &d.PerPeer}, {&l.InFlight, &d.InFlight}, {&l.AskPeers, &d.AskPeers}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if l.AskTimeout <= 0 {
		l.AskTimeout = d.AskTimeout
	}
	return l
}

// quarantine holds one candidate's unverified blocks, bounded. Used by one
// goroutine at a time.
type quarantine struct {
	maxBlocks, maxBytes int
	bytes               int
	blocks              map[cid.Cid][]byte
}

func newQuarantine(l Limits) *quarantine {
	return &quarantine{maxBlocks: l.MaxBlocks, maxBytes: l.MaxBytes, blocks: map[cid.Cid][]byte{}}
}

// add keeps data, whose CID the caller has checked, unless it is too large
// or the quarantine is full.
func (q *quarantine) add(data []byte) error {
	c := dag.CID(data)
	if _, ok := q.blocks[c]; ok {
		return nil
	}
	if len(data) > MaxHeadSize {
		return fmt.Errorf("block %s: %w: %d bytes, limit %d", c, dag.ErrTooLarge, len(data), MaxHeadSize)
	}
	if len(q.blocks) >= q.maxBlocks || q.bytes+len(data) > q.maxBytes {
		return fmt.Errorf("%w: %d blocks, %d bytes held, limits %d and %d", ErrQuarantineFull, len(q.blocks), q.bytes, q.maxBlocks, q.maxBytes)
	}
	q.blocks[c] = data
	q.bytes += len(data)
	return nil
}

func (q *quarantine) get(c cid.Cid) ([]byte, bool) {
	b, ok := q.blocks[c]
	return b, ok
}

// room is how many more blocks fit.
func (q *quarantine) room() int { return q.maxBlocks - len(q.blocks) }

// budget counts the candidates fetching blocks, per announcing peer and
// in all. Safe for concurrent use.
type budget struct {
	perPeer, total int

	mu    sync.Mutex
	n     int
	peers map[peer.ID]int
}

// acquire takes a slot for a candidate announced by p (or by no peer, "")
// and returns its release, or ErrBusy without waiting.
func (b *budget) acquire(p peer.ID) (func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n >= b.total {
		return nil, fmt.Errorf("%w: %d fetching", ErrBusy, b.n)
	}
	if b.peers[p] >= b.perPeer {
		return nil, fmt.Errorf("%w: %d fetching for peer %s", ErrBusy, b.peers[p], p)
	}
	if b.peers == nil {
		b.peers = map[peer.ID]int{}
	}
	b.n++
	b.peers[p]++
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.n--
		if b.peers[p]--; b.peers[p] == 0 {
			delete(b.peers, p)
		}
	}, nil
}

// busy reports whether acquire(p) would fail now.
func (b *budget) busy(p peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n >= b.total || b.peers[p] >= b.perPeer
}
