package p2p

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	bsnetif "github.com/ipfs/boxo/bitswap/network"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// BitswapPenalty is one peer the node penalised for lying over bitswap:
// it was disconnected and its connections are refused until Until.
type BitswapPenalty struct {
	Peer peer.ID
	// Label is the reason class: the text of ErrUnwantedBlock or
	// ErrBrokenPromise.
	Label string
	// Reason is the full text of the latest penalty.
	Reason string
	// Count is how many times the peer was penalised since New; each
	// penalty lasts twice the one before, up to 64 times
	// BitswapConfig.Penalty.
	Count int
	First time.Time
	Last  time.Time
	Until time.Time
}

// maxPenalised bounds the penalised peers remembered; when full, expired
// entries go first, then the one whose penalty ends soonest.
const maxPenalised = 1024

// maxPenaltyDoublings caps a repeat offender's penalty at 2^6 times the
// base.
const maxPenaltyDoublings = 6

// contentGuard watches the node's bitswap traffic through guardedNetwork,
// feeds a liarLedger, and penalises the peers it condemns: a log line,
// counters, a disconnect, and refusal of their connections (it is the
// host's connection gater) for a while, so bitswap sessions drop them and
// ask the other holders.
//
// It starts no goroutine until traffic flows: a timer (stopped by close)
// sweeps the ledger while want-blocks are pending, and each penalty
// disconnects in a goroutine that close waits for.
type contentGuard struct {
	log     *slog.Logger
	now     func() time.Time
	penalty time.Duration
	counter *prometheus.CounterVec // nil: metrics disabled

	// disconnect closes every connection to a peer; set once before
	// bitswap starts.
	disconnect func(peer.ID)

	// spare, if set, names peers that are never penalised (a follower's
	// curators): a verdict against one is counted and logged only.
	spare atomic.Pointer[func(peer.ID) bool]

	mu        sync.Mutex
	ledger    *liarLedger
	lastSweep time.Time
	timer     *time.Timer // armed while want-blocks are pending
	closed    bool
	table     map[peer.ID]*BitswapPenalty
	totals    map[string]uint64
	wg        sync.WaitGroup // disconnects in flight
}

var _ connmgr.ConnectionGater = (*contentGuard)(nil)

func newContentGuard(b BitswapConfig, log *slog.Logger, now func() time.Time, reg prometheus.Registerer) (*contentGuard, error) {
	g := &contentGuard{
		log:        log,
		now:        now,
		penalty:    b.Penalty,
		disconnect: func(peer.ID) {},
		ledger:     newLiarLedger(defaultLedgerLimits(b.PromiseTimeout)),
		table:      make(map[peer.ID]*BitswapPenalty),
		totals:     make(map[string]uint64),
	}
	if reg == nil {
		return g, nil
	}
	c, err := registerCounterVec(reg, prometheus.CounterOpts{
		Namespace: "pinfold",
		Subsystem: "p2p",
		Name:      "bitswap_penalties_total",
		Help:      "Bitswap peers penalised (disconnected and refused for a while), by reason.",
	}, "reason")
	if err != nil {
		return nil, err
	}
	g.counter = c
	return g, nil
}

// refused reports whether p is serving a penalty.
func (g *contentGuard) refused(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.table[p]
	return ok && g.now().Before(e.Until)
}

// sending records the wants of a message about to go to p.
func (g *contentGuard) sending(p peer.ID, m bsmsg.BitSwapMessage) {
	wl := m.Wantlist()
	if len(wl) == 0 {
		return
	}
	g.mu.Lock()
	now := g.now()
	for _, e := range wl {
		mh := string(e.Cid.Hash())
		if e.Cancel {
			g.ledger.cancelSent(p, mh)
		} else {
			g.ledger.wantSent(now, p, mh, e.WantType == pb.Message_Wantlist_Block)
		}
	}
	vs := g.maybeSweep(now)
	g.mu.Unlock()
	g.apply(vs)
}

// sendFailed takes back the want-blocks of a message p never got.
func (g *contentGuard) sendFailed(p peer.ID, m bsmsg.BitSwapMessage) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, e := range m.Wantlist() {
		if !e.Cancel && e.WantType == pb.Message_Wantlist_Block {
			g.ledger.unsent(p, string(e.Cid.Hash()))
		}
	}
}

// received records the blocks and DONT_HAVEs of a message from p.
func (g *contentGuard) received(p peer.ID, m bsmsg.BitSwapMessage) {
	g.mu.Lock()
	now := g.now()
	var vs []verdict
	for _, b := range m.Blocks() {
		if v, ok := g.ledger.blockReceived(now, p, string(b.Cid().Hash())); ok {
			vs = append(vs, v)
		}
	}
	for _, c := range m.DontHaves() {
		g.ledger.dontHaveReceived(now, p, string(c.Hash()))
	}
	vs = append(vs, g.maybeSweep(now)...)
	g.mu.Unlock()
	g.apply(vs)
}

// maybeSweep sweeps the ledger at most ten times per promise timeout
// and keeps the timer armed while want-blocks are pending, so a peer
// that goes silent is judged even when no traffic flows. g.mu is held.
func (g *contentGuard) maybeSweep(now time.Time) []verdict {
	if g.closed {
		return nil
	}
	every := max(g.ledger.lim.promiseTimeout/10, 50*time.Millisecond)
	var vs []verdict
	if now.Sub(g.lastSweep) >= every {
		g.lastSweep = now
		vs = g.ledger.sweep(now)
	}
	if g.timer == nil && g.ledger.busy() {
		g.timer = time.AfterFunc(every, g.tick)
	}
	return vs
}

// tick is the timer's sweep.
func (g *contentGuard) tick() {
	g.mu.Lock()
	g.timer = nil
	vs := g.maybeSweep(g.now())
	g.mu.Unlock()
	g.apply(vs)
}

// apply penalises the condemned: counted, logged, disconnected, refused.
// A peer already serving a penalty is not penalised again.
func (g *contentGuard) apply(vs []verdict) {
	for _, v := range vs {
		now := g.now()
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return
		}
		if spare := g.spare.Load(); spare != nil && (*spare)(v.peer) {
			label := "spared: " + v.reason.Error()
			g.totals[label]++
			n := g.totals[label]
			g.mu.Unlock()
			if n&(n-1) == 0 {
				g.log.Info("bitswap peer not penalised: it is trusted", "peer", v.peer, "reason", v.reason, "detail", v.detail, "count", n)
			}
			continue
		}
		e, ok := g.table[v.peer]
		if ok && now.Before(e.Until) {
			g.mu.Unlock()
			continue
		}
		if !ok {
			g.makeRoom(now)
			e = &BitswapPenalty{Peer: v.peer, First: now}
			g.table[v.peer] = e
		}
		e.Count++
		d := g.penalty << min(e.Count-1, maxPenaltyDoublings)
		e.Label, e.Reason, e.Last, e.Until = v.reason.Error(), v.err().Error(), now, now.Add(d)
		g.totals[e.Label]++
		entry := *e
		g.wg.Add(1)
		g.mu.Unlock()

		if g.counter != nil {
			g.counter.WithLabelValues(entry.Label).Inc()
		}
		g.log.Warn("bitswap peer penalised", "peer", v.peer, "reason", entry.Label, "detail", v.detail,
			"refused_for", d, "count", entry.Count)
		go func() {
			defer g.wg.Done()
			g.disconnect(v.peer)
		}()
	}
}

// makeRoom drops one entry when the table is full: an expired one, else
// the one whose penalty ends soonest. g.mu is held.
func (g *contentGuard) makeRoom(now time.Time) {
	if len(g.table) < maxPenalised {
		return
	}
	var drop peer.ID
	var soonest time.Time
	for p, e := range g.table {
		if !now.Before(e.Until) {
			delete(g.table, p)
			return
		}
		if soonest.IsZero() || e.Until.Before(soonest) {
			drop, soonest = p, e.Until
		}
	}
	delete(g.table, drop)
}

// penalties lists the remembered penalties, most recent first.
func (g *contentGuard) penalties() []BitswapPenalty {
	g.mu.Lock()
	out := make([]BitswapPenalty, 0, len(g.table))
	for _, e := range g.table {
		out = append(out, *e)
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b BitswapPenalty) int { return b.Last.Compare(a.Last) })
	return out
}

func (g *contentGuard) counts() map[string]uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.totals)
}

// close stops the timer and waits for disconnects in flight. Idempotent.
func (g *contentGuard) close() {
	g.mu.Lock()
	g.closed = true
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// Connection gating: a penalised peer is neither dialled nor accepted.

func (g *contentGuard) InterceptPeerDial(p peer.ID) bool                 { return !g.refused(p) }
func (g *contentGuard) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.refused(p) }
func (g *contentGuard) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *contentGuard) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.refused(p)
}
func (g *contentGuard) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

// guardedNetwork is bitswap's network with the guard on it: it shows the
// guard every message bitswap sends and receives (boxo's tracer sees only
// the server's sends, not the client's wants) and drops messages from
// penalised peers.
type guardedNetwork struct {
	bsnetif.BitSwapNetwork
	g *contentGuard
}

func (n guardedNetwork) Start(rs ...bsnetif.Receiver) {
	wrapped := make([]bsnetif.Receiver, len(rs))
	for i, r := range rs {
		wrapped[i] = guardedReceiver{Receiver: r, g: n.g}
	}
	n.BitSwapNetwork.Start(wrapped...)
}

func (n guardedNetwork) SendMessage(ctx context.Context, p peer.ID, m bsmsg.BitSwapMessage) error {
	n.g.sending(p, m)
	err := n.BitSwapNetwork.SendMessage(ctx, p, m)
	if err != nil {
		n.g.sendFailed(p, m)
	}
	return err
}

func (n guardedNetwork) NewMessageSender(ctx context.Context, p peer.ID, opts *bsnetif.MessageSenderOpts) (bsnetif.MessageSender, error) {
	s, err := n.BitSwapNetwork.NewMessageSender(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	return guardedSender{MessageSender: s, p: p, g: n.g}, nil
}

type guardedSender struct {
	bsnetif.MessageSender
	p peer.ID
	g *contentGuard
}

func (s guardedSender) SendMsg(ctx context.Context, m bsmsg.BitSwapMessage) error {
	s.g.sending(s.p, m) // before: an answer can beat SendMsg's return
	err := s.MessageSender.SendMsg(ctx, m)
	if err != nil {
		s.g.sendFailed(s.p, m)
	}
	return err
}

type guardedReceiver struct {
	bsnetif.Receiver
	g *contentGuard
}

func (r guardedReceiver) ReceiveMessage(ctx context.Context, p peer.ID, m bsmsg.BitSwapMessage) {
	if r.g.refused(p) {
		return // penalised: its disconnect is under way
	}
	r.g.received(p, m)
	r.Receiver.ReceiveMessage(ctx, p, m)
}

// PeerDisconnected tells the guard before bitswap.
func (r guardedReceiver) PeerDisconnected(p peer.ID) {
	r.g.mu.Lock()
	r.g.ledger.disconnected(p)
	r.g.mu.Unlock()
	r.Receiver.PeerDisconnected(p)
}

// BitswapPenalties returns the peers penalised for lying over bitswap
// (at most 1024, the most recent first), including those whose penalty
// has ended.
func (n *Node) BitswapPenalties() []BitswapPenalty { return n.guard.penalties() }

// BitswapPenaltyCounts returns how many penalties were given per reason
// label (ErrUnwantedBlock, ErrBrokenPromise) since New.
func (n *Node) BitswapPenaltyCounts() map[string]uint64 { return n.guard.counts() }

// SpareFromPenalties makes the bitswap guard spare the peers f names:
// what would penalise one is counted (as "spared: <reason>") and logged,
// and it is neither disconnected nor refused. A follower spares its
// curators: one slow to answer because many followers fetch from it at
// once must not be cut off from them. Safe to call while the node runs.
func (n *Node) SpareFromPenalties(f func(peer.ID) bool) { n.guard.spare.Store(&f) }
