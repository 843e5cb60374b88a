package records

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/assign"
	"github.com/pinfold/pinfold/dag"
)

// Reasons an ACK is refused although its signature is valid. Each names
// what the worst member could try: ACK as a non-member, for a shard that
// does not exist or is someone else's, against an old head, or replay.
var (
	ErrNotMember   = errors.New("records: ack from a peer that is not a member")
	ErrNoShard     = errors.New("records: ack for a shard the head does not have")
	ErrNotAssigned = errors.New("records: ack for a shard not assigned to its peer")
	ErrNotHolder   = errors.New("records: release of a shard its peer never held")
	ErrStaleHead   = errors.New("records: ack names a head older than the recent window")
	ErrUnknownHead = errors.New("records: ack names a head this node has not verified")
	ErrSeqMismatch = errors.New("records: ack seq differs from its head's")
	ErrReplay      = errors.New("records: ack not newer than the one recorded")
)

// HeadView is one recent verified head as ACKs are checked against it:
// its allocation plan and the members it lists.
type HeadView struct {
	CID     cid.Cid
	Seq     int64
	Plan    *allocation.Plan
	Members map[string]bool // binary peer IDs listed by the head
}

// Last is the newest ACK accepted before for one (member, shard): what
// a new one must be newer than, and whether that member held the shard.
type Last struct {
	Seq   int64 // seq of the head it named
	Time  int64 // member's clock, orders ACKs under one head only
	State string
}

// CheckAck decides whether a, whose signature was verified, can be true:
// its peer is a member of the head it names, the shard exists there and
// is assigned to it (a release needs only that it held the shard), and it
// is newer than last (nil: none) by the named head's seq, then the
// member's clock. An exact repeat of last is a replay too. A pure
// function: no clock, no I/O.
func CheckAck(a dag.Ack, v HeadView, last *Last) error {
	p := peer.ID(a.Peer)
	if a.Seq != v.Seq {
		return fmt.Errorf("%w: ack of %s says seq %d, head %s is seq %d", ErrSeqMismatch, p, a.Seq, v.CID, v.Seq)
	}
	if !v.Members[string(a.Peer)] {
		return fmt.Errorf("%w: %s is not listed by head %s (seq %d)", ErrNotMember, p, v.CID, v.Seq)
	}
	holders, ok := v.Plan.Holders(a.Shard)
	if !ok {
		return fmt.Errorf("%w: shard %d is not in head %s (seq %d)", ErrNoShard, a.Shard, v.CID, v.Seq)
	}
	assigned := slices.ContainsFunc(holders, func(h []byte) bool { return bytes.Equal(h, a.Peer) })
	switch {
	case a.State == "released":
		if !assigned && (last == nil || last.State != "stored") {
			return fmt.Errorf("%w: %s releases shard %d without a stored ACK", ErrNotHolder, p, a.Shard)
		}
	case !assigned:
		return fmt.Errorf("%w: head %s (seq %d) does not give shard %d to %s", ErrNotAssigned, v.CID, v.Seq, a.Shard, p)
	}
	if last != nil && (a.Seq < last.Seq || (a.Seq == last.Seq && a.Time <= last.Time)) {
		return fmt.Errorf("%w: %s shard %d at seq %d time %d, already have seq %d time %d",
			ErrReplay, p, a.Shard, a.Seq, a.Time, last.Seq, last.Time)
	}
	return nil
}

// DefaultWindow is the window of a node that has no curator config: a
// follower's. A follower only relays and displays ACKs; an ACK it finds
// stale is ignored, not rejected, so a curator with a larger window still
// hears it from others.
const DefaultWindow = 16

// Window holds the recent verified heads an ACK may name: the newest N.
// Safe for concurrent use.
type Window struct {
	mu    sync.Mutex
	n     int
	heads []HeadView   // ascending seq
	plans *assign.Memo // set by UsePlans; nil: each head's plan computed here
}

// NewWindow returns a window of the newest n heads (n >= 1).
func NewWindow(n int) *Window { return &Window{n: max(n, 1)} }

// UsePlans makes Follow take heads' plans from m, which the daemon's
// other users of plans share, instead of computing its own. Call it
// before Follow.
func (w *Window) UsePlans(m *assign.Memo) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.plans = m
}

// Add inserts a verified head's view; the oldest heads beyond the window
// size fall out. A head already present is replaced.
func (w *Window) Add(v HeadView) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.heads = slices.DeleteFunc(w.heads, func(h HeadView) bool { return h.CID.Equals(v.CID) })
	i, _ := slices.BinarySearchFunc(w.heads, v.Seq, func(h HeadView, s int64) int { return int(min(max(h.Seq-s, -1), 1)) })
	w.heads = slices.Insert(w.heads, i, v)
	if len(w.heads) > w.n {
		w.heads = slices.Clone(w.heads[len(w.heads)-w.n:])
	}
}

// Has reports whether head c is in the window.
func (w *Window) Has(c cid.Cid) bool {
	_, err := w.Lookup(c, 0)
	return err == nil
}

// Lookup returns the view of head c, which an ACK naming seq names. A
// head older than the window is ErrStaleHead; any other head not in it
// is ErrUnknownHead (it may be newer than what this node verified).
func (w *Window) Lookup(c cid.Cid, seq int64) (HeadView, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range w.heads {
		if h.CID.Equals(c) {
			return h, nil
		}
	}
	if len(w.heads) > 0 && seq < w.heads[0].Seq {
		return HeadView{}, fmt.Errorf("%w: head %s (seq %d); the oldest accepted is seq %d", ErrStaleHead, c, seq, w.heads[0].Seq)
	}
	return HeadView{}, fmt.Errorf("%w: %s (seq %d)", ErrUnknownHead, c, seq)
}

// Newest returns the newest head in the window.
func (w *Window) Newest() (HeadView, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.heads) == 0 {
		return HeadView{}, false
	}
	return w.heads[len(w.heads)-1], true
}
