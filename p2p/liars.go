package p2p

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Reasons a bitswap peer is penalised. They are the labels of
// BitswapPenaltyCounts and of the pinfold_p2p_bitswap_penalties_total
// counter.
var (
	// ErrUnwantedBlock: the peer sent blocks whose bytes hash to no CID
	// we asked anyone for. Bitswap hashes what it receives under the
	// wanted CID's prefix, so wrong bytes for a wanted CID arrive as such a
	// block.
	ErrUnwantedBlock = errors.New("p2p: bitswap peer sent unwanted blocks")

	// ErrBrokenPromise: the peer was sent want-blocks (after claiming the
	// blocks with HAVE) and answered none of them, neither with the block
	// nor with DONT_HAVE, within BitswapConfig.PromiseTimeout.
	ErrBrokenPromise = errors.New("p2p: bitswap peer left want-blocks unanswered")
)

// ledgerLimits bound a liarLedger: its memory and its verdicts.
type ledgerLimits struct {
	promiseTimeout time.Duration // a want-block unanswered this long is broken
	wantMemory     time.Duration // how long a sent want makes its block wanted (at least half of it)
	maxWanted      int           // distinct wanted multihashes remembered
	maxPending     int           // unanswered want-blocks tracked per peer
	maxPeers       int           // peers tracked
	unwantedLimit  int           // unwanted blocks that make a verdict
	dodgeLimit     int           // cancelled want-blocks left unanswered that make a verdict
	unwantedReset  time.Duration // a peer's unwanted count restarts after this long without one
}

func defaultLedgerLimits(promise time.Duration) ledgerLimits {
	return ledgerLimits{
		promiseTimeout: promise,
		wantMemory:     2 * time.Minute,
		maxWanted:      1 << 16,
		maxPending:     4096,
		maxPeers:       4096,
		unwantedLimit:  2,
		dodgeLimit:     4,
		unwantedReset:  10 * time.Minute,
	}
}

// verdict is the ledger's finding against one peer.
type verdict struct {
	peer   peer.ID
	reason error // ErrUnwantedBlock or ErrBrokenPromise
	detail string
}

func (v verdict) err() error { return fmt.Errorf("%w: %s", v.reason, v.detail) }

// pendingWant is a want-block sent to a peer and not answered yet.
type pendingWant struct {
	at        time.Time // first sent
	cancelled bool      // we sent a cancel since (someone else delivered)
}

// peerBook is what the ledger knows of one peer.
type peerBook struct {
	pending    map[string]pendingWant // by multihash
	answered   time.Time              // last wanted block or DONT_HAVE it sent
	dodged     int                    // cancelled want-blocks it never answered, since its last answer
	unwanted   int
	unwantedAt time.Time
	condemned  time.Time // when a verdict was given; zero if none
}

// liarLedger decides which bitswap peers lie, from the wants we send and
// the answers we receive. It is pure: the caller passes the time, it does
// no I/O, starts nothing and is not safe for concurrent use.
//
// Two lies are caught:
//
//   - Wrong bytes. A block whose multihash was in no want we sent anyone
//     in the last wantMemory (at least half of it) is unwanted: honest
//     bitswap servers send only blocks they were asked for, and bytes that
//     do not match the wanted CID hash to some other multihash. unwantedLimit
//     of them (within unwantedReset of each other) make a verdict.
//   - Broken promises. A want-block sent to a peer is pending until the
//     peer sends that block or DONT_HAVE for it. Once it is promiseTimeout
//     old, a peer that answered nothing since it was sent gets a verdict,
//     unless we had cancelled the want (someone else delivered first, or
//     boxo gave up on the peer and asked another): an honest peer drops a
//     cancelled want, so only dodgeLimit such wants in a row, with no
//     answer in between, make a verdict. Boxo itself treats a want-block
//     unanswered for 7 s as DONT_HAVE, so an honest peer that slow was of
//     no use anyway.
//
// Memory is bounded by maxWanted multihashes, maxPeers peers and
// maxPending pending wants per peer.
type liarLedger struct {
	lim ledgerLimits

	// Wanted multihashes in two generations: cur is filled, and becomes
	// prev when it is wantMemory/2 old or holds maxWanted/2 entries.
	cur, prev map[string]struct{}
	curSince  time.Time

	peers map[peer.ID]*peerBook
}

func newLiarLedger(lim ledgerLimits) *liarLedger {
	return &liarLedger{
		lim:   lim,
		cur:   make(map[string]struct{}),
		prev:  make(map[string]struct{}),
		peers: make(map[peer.ID]*peerBook),
	}
}

// rotate starts a new generation of wanted multihashes when cur is old
// or full.
func (l *liarLedger) rotate(now time.Time) {
	if l.curSince.IsZero() {
		l.curSince = now
	}
	if now.Sub(l.curSince) >= l.lim.wantMemory/2 || len(l.cur) >= l.lim.maxWanted/2 {
		l.prev, l.cur, l.curSince = l.cur, make(map[string]struct{}), now
	}
}

func (l *liarLedger) isWanted(mh string) bool {
	_, ok := l.cur[mh]
	if !ok {
		_, ok = l.prev[mh]
	}
	return ok
}

// book returns p's book, creating it when there is room; nil when the
// table is full of peers with business pending.
func (l *liarLedger) book(p peer.ID) *peerBook {
	if b, ok := l.peers[p]; ok {
		return b
	}
	if len(l.peers) >= l.lim.maxPeers {
		for q, b := range l.peers {
			if len(b.pending) == 0 && b.unwanted == 0 {
				delete(l.peers, q)
				break
			}
		}
		if len(l.peers) >= l.lim.maxPeers {
			return nil
		}
	}
	b := &peerBook{pending: make(map[string]pendingWant)}
	l.peers[p] = b
	return b
}

// wantSent records a want (block or have) for multihash mh sent to p.
func (l *liarLedger) wantSent(now time.Time, p peer.ID, mh string, block bool) {
	l.rotate(now)
	l.cur[mh] = struct{}{}
	if !block {
		return
	}
	b := l.book(p)
	if b == nil || !b.condemned.IsZero() {
		return
	}
	if w, ok := b.pending[mh]; ok {
		w.cancelled = false // wanted again; keeps its first time
		b.pending[mh] = w
	} else if len(b.pending) < l.lim.maxPending {
		b.pending[mh] = pendingWant{at: now}
	}
}

// cancelSent records that we sent p a cancel for mh.
func (l *liarLedger) cancelSent(p peer.ID, mh string) {
	if b, ok := l.peers[p]; ok {
		if w, ok := b.pending[mh]; ok {
			w.cancelled = true
			b.pending[mh] = w
		}
	}
}

// unsent takes back a want-block that never reached p.
func (l *liarLedger) unsent(p peer.ID, mh string) {
	if b, ok := l.peers[p]; ok {
		delete(b.pending, mh)
	}
}

// dontHaveReceived records p's DONT_HAVE for mh: an answer.
func (l *liarLedger) dontHaveReceived(now time.Time, p peer.ID, mh string) {
	if b, ok := l.peers[p]; ok {
		if _, was := b.pending[mh]; was {
			delete(b.pending, mh)
			b.answered, b.dodged = now, 0
		}
	}
}

// blockReceived records a block with multihash mh from p and returns a
// verdict when p has now sent unwantedLimit unwanted blocks.
func (l *liarLedger) blockReceived(now time.Time, p peer.ID, mh string) (verdict, bool) {
	if l.isWanted(mh) {
		if b, ok := l.peers[p]; ok {
			delete(b.pending, mh)
			b.answered, b.dodged = now, 0
		}
		return verdict{}, false
	}
	b := l.book(p)
	if b == nil || !b.condemned.IsZero() {
		return verdict{}, false
	}
	if now.Sub(b.unwantedAt) > l.lim.unwantedReset {
		b.unwanted = 0
	}
	b.unwanted++
	b.unwantedAt = now
	if b.unwanted < l.lim.unwantedLimit {
		return verdict{}, false
	}
	b.condemned = now
	b.pending = make(map[string]pendingWant)
	return verdict{peer: p, reason: ErrUnwantedBlock,
		detail: fmt.Sprintf("%d blocks that hash to no CID we asked for", b.unwanted)}, true
}

// sweep judges every want-block pending for promiseTimeout or more: it
// returns a verdict for each peer that left one it still owes, or
// dodgeLimit cancelled ones, unanswered with no answer of any kind since.
// It forgets peers with nothing pending.
func (l *liarLedger) sweep(now time.Time) []verdict {
	l.rotate(now)
	var out []verdict
	for p, b := range l.peers {
		if !b.condemned.IsZero() {
			// One verdict per offence: the book goes once the penalty
			// has had time to disconnect the peer.
			if now.Sub(b.condemned) >= l.lim.promiseTimeout {
				delete(l.peers, p)
			}
			continue
		}
		owed := 0
		var oldest time.Time
		for mh, w := range b.pending {
			if now.Sub(w.at) < l.lim.promiseTimeout {
				continue
			}
			delete(b.pending, mh)
			if b.answered.After(w.at) {
				continue // it answers, only slowly; boxo asked someone else
			}
			if w.cancelled {
				b.dodged++
				continue
			}
			owed++
			if oldest.IsZero() || w.at.Before(oldest) {
				oldest = w.at
			}
		}
		if owed > 0 || b.dodged >= l.lim.dodgeLimit {
			b.condemned = now
			b.pending = make(map[string]pendingWant)
			detail := fmt.Sprintf("%d cancelled want-blocks never answered", b.dodged)
			if owed > 0 {
				detail = fmt.Sprintf("%d want-blocks unanswered for %s, %s", owed, now.Sub(oldest).Round(time.Millisecond), detail)
			}
			out = append(out, verdict{peer: p, reason: ErrBrokenPromise, detail: detail})
			continue
		}
		if len(b.pending) == 0 && b.dodged == 0 && (b.unwanted == 0 || now.Sub(b.unwantedAt) > l.lim.unwantedReset) {
			delete(l.peers, p)
		}
	}
	return out
}

// busy reports whether any want-block is pending, so sweeps are due.
func (l *liarLedger) busy() bool {
	for _, b := range l.peers {
		if len(b.pending) > 0 {
			return true
		}
	}
	return false
}

// disconnected forgets what p owes: a want-block to a peer that hung up is
// no broken promise (bitswap asks the others). A condemned peer's book
// stays until it expires, so the verdict is not repeated.
func (l *liarLedger) disconnected(p peer.ID) {
	if b, ok := l.peers[p]; ok && b.condemned.IsZero() {
		b.pending = make(map[string]pendingWant)
		b.dodged = 0
	}
}
