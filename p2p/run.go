package p2p

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// target is a peer Run keeps (or tries to keep) a connection to.
type target struct {
	info        peer.AddrInfo
	bootstrap   bool
	member      bool      // kept by SetMembers
	reached     bool      // a connection to it has succeeded in this Run
	failures    int       // consecutive failed dials or short-lived connections
	next        time.Time // earliest next dial
	dialing     bool
	dialedAt    time.Time // when the newest dial started
	connectedAt time.Time // zero while not connected
}

type dialResult struct {
	id  peer.ID
	err error
}

// stableConn is how long a connection must last for its peer's backoff
// to start again from ReconnectMin when it drops.
const stableConn = time.Minute

// Run keeps the node connected to its bootstrap and remembered peers and
// maintains the peers file, until ctx is done or Close is called; then it
// writes the peers file a last time and returns that error, if any.
//
// Bootstrap peers and kept members (SetMembers) are redialled whenever
// they are not connected, with backoff from ReconnectMin up to
// KeepReconnectMax (a member never reached yet: ReconnectMax). Remembered
// peers (from the peers file, and every peer speaking gossipsub that we
// get connected to) are dialled with backoff up to ReconnectMax, but only
// while the node has fewer than ConnLow connections, so redialling never
// fights the connection manager's trimming. When a bootstrap peer or kept
// member connects, the others that are not connected are dialled at once:
// the network is back. A backoff counts from the start of the failed dial,
// so a dial that hung until its timeout is not followed by a full wait.
// Only one Run may be active at a time (ErrRunning).
//
// Goroutines: Run owns its dial goroutines (at most MaxParallelDials) and
// waits for them before returning.
func (n *Node) Run(ctx context.Context) error {
	n.mu.Lock()
	switch {
	case n.closed:
		n.mu.Unlock()
		return ErrClosed
	case n.running:
		n.mu.Unlock()
		return ErrRunning
	}
	n.running = true
	n.runWG.Add(1) // Close waits for this
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.running = false
		n.mu.Unlock()
		n.runWG.Done()
	}()

	sub, err := n.host.EventBus().Subscribe([]any{
		new(event.EvtPeerConnectednessChanged),
		new(event.EvtPeerIdentificationCompleted),
	}, eventbus.BufSize(256), eventbus.Name("pinfold-p2p-run"))
	if err != nil {
		return fmt.Errorf("subscribe to host events: %w", err)
	}
	defer sub.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &runner{
		n:       n,
		ctx:     ctx,
		targets: make(map[peer.ID]*target),
		results: make(chan dialResult, n.cfg.MaxParallelDials), // a dial never blocks on send
	}
	r.seed()
	r.syncMembers()

	var saveTick <-chan time.Time
	if n.mem != nil {
		t := time.NewTicker(n.cfg.SavePeersEvery)
		defer t.Stop()
		saveTick = t.C
	}
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	deafTick := time.NewTicker(deafAfter / 2)
	defer deafTick.Stop()

loop:
	for {
		if d, ok := r.dialDue(); ok {
			wake.Reset(d)
		} else {
			wake.Stop()
		}
		select {
		case <-ctx.Done():
			break loop
		case <-n.done:
			break loop
		case ev, ok := <-sub.Out():
			if !ok {
				break loop
			}
			r.handleEvent(ev)
		case res := <-r.results:
			r.handleResult(res)
		case <-wake.C:
		case <-n.members.wake:
			r.syncMembers()
		case <-deafTick.C:
			r.closeDeaf()
		case <-saveTick:
			if err := n.mem.save(n.cfg.PeersFile, false); err != nil {
				// Retried at the next tick and when Run stops.
				n.log.Warn("save peers file", "err", err)
			}
		}
	}
	cancel()
	r.dials.Wait()
	if n.mem != nil {
		if err := n.mem.save(n.cfg.PeersFile, false); err != nil {
			return err
		}
	}
	return nil
}

// deafAfter: a connection to a peer that speaks gossipsub but has had no
// pubsub stream with us for this long is closed, so that it is dialled
// again. Gossipsub opens its stream once per connection and does not
// retry one that failed to open while the connection lives; such a peer
// (a follower and its curator, under load) would hear nothing.
var deafAfter = 30 * time.Second

// closeDeaf closes the connections to gossipsub peers that have no pubsub
// stream, opened at least deafAfter ago.
func (r *runner) closeDeaf() {
	in := map[peer.ID]bool{}
	for _, p := range r.n.ps.ListPeers("") {
		in[p] = true
	}
	now := time.Now() // connection times are the wall clock's
	for _, p := range r.n.host.Network().Peers() {
		if in[p] || !r.speaksGossipsub(p) {
			continue
		}
		var opened time.Time
		for _, c := range r.n.host.Network().ConnsToPeer(p) {
			if o := c.Stat().Opened; opened.IsZero() || o.Before(opened) {
				opened = o
			}
		}
		if opened.IsZero() || now.Sub(opened) < deafAfter {
			continue
		}
		r.n.log.Info("no pubsub stream with a connected peer; closing the connection so that it is dialled again", "peer", p)
		r.dials.Add(1)
		go func() { // owned by Run: it waits for r.dials
			defer r.dials.Done()
			_ = r.n.host.Network().ClosePeer(p)
		}()
	}
}

// runner is Run's state; only Run's goroutine touches it.
type runner struct {
	n        *Node
	ctx      context.Context
	targets  map[peer.ID]*target
	results  chan dialResult
	dials    sync.WaitGroup
	inflight int
}

// seed adds the bootstrap and remembered peers as targets and remembers
// the peers already connected.
func (r *runner) seed() {
	for _, ai := range r.n.bootstrap {
		r.targets[ai.ID] = &target{info: ai, bootstrap: true}
	}
	if r.n.mem == nil {
		return
	}
	for _, p := range r.n.mem.list() {
		r.addRemembered(peer.AddrInfo{ID: p.ID, Addrs: p.Addrs})
	}
	now := r.n.now()
	for _, id := range r.n.host.Network().Peers() {
		if r.speaksGossipsub(id) {
			if r.n.mem.seen(id, r.n.host.Peerstore().Addrs(id), now) {
				r.addRemembered(peer.AddrInfo{ID: id, Addrs: r.n.host.Peerstore().Addrs(id)})
			}
		}
		if t := r.targets[id]; t != nil {
			t.connectedAt = now
		}
	}
}

// syncMembers makes the kept members (SetMembers) targets, and the
// targets that are no longer kept ordinary ones (dropped by dialDue unless
// remembered).
func (r *runner) syncMembers() {
	kept := make(map[peer.ID]bool)
	for _, ai := range r.n.members.get() {
		kept[ai.ID] = true
		t, ok := r.targets[ai.ID]
		if !ok {
			t = &target{}
			r.targets[ai.ID] = t
			if r.n.host.Network().Connectedness(ai.ID) == network.Connected {
				t.connectedAt, t.reached = r.n.now(), true
			}
		}
		if !t.bootstrap {
			if len(ai.Addrs) > 0 || t.info.ID == "" {
				t.info = ai
			} // else keep the addresses remembered for it
			t.member = true
		}
	}
	for id, t := range r.targets {
		if t.member && !kept[id] {
			t.member = false
		}
	}
}

// kept reports whether Run keeps t connected whatever the number of
// connections.
func (t *target) kept() bool { return t.bootstrap || t.member }

// close reports whether t is redialled without backing off for minutes: a
// bootstrap peer, or a kept member that the node has reached, so whose
// addresses are known to lead to it (a member's never-tried claims could
// name anyone's).
func (t *target) close() bool { return t.bootstrap || (t.member && t.reached) }

func (r *runner) addRemembered(ai peer.AddrInfo) {
	if ai.ID == r.n.host.ID() {
		return
	}
	if t, ok := r.targets[ai.ID]; ok {
		if !t.bootstrap {
			t.info.Addrs = usableAddrs(ai.Addrs)
		}
		return
	}
	r.targets[ai.ID] = &target{info: peer.AddrInfo{ID: ai.ID, Addrs: usableAddrs(ai.Addrs)}}
}

func (r *runner) speaksGossipsub(id peer.ID) bool {
	protos, err := r.n.host.Peerstore().SupportsProtocols(id, pubsub.GossipSubDefaultProtocols...)
	return err == nil && len(protos) > 0
}

func (r *runner) handleEvent(ev any) {
	now := r.n.now()
	switch e := ev.(type) {
	case event.EvtPeerConnectednessChanged:
		t := r.targets[e.Peer]
		if t == nil {
			return
		}
		switch e.Connectedness {
		case network.Connected:
			t.connectedAt, t.reached = now, true
			if t.kept() {
				r.retryKept(e.Peer, now)
			}
		case network.NotConnected:
			if !t.connectedAt.IsZero() && now.Sub(t.connectedAt) >= stableConn {
				t.failures = 0
			} else {
				t.failures++
			}
			t.connectedAt = time.Time{}
			t.next = now.Add(r.backoff(t))
		}
	case event.EvtPeerIdentificationCompleted:
		if r.n.mem == nil || !slices.ContainsFunc(e.Protocols, func(p protocol.ID) bool {
			return slices.Contains(pubsub.GossipSubDefaultProtocols, p)
		}) {
			return
		}
		if r.n.mem.seen(e.Peer, e.ListenAddrs, now) {
			r.addRemembered(peer.AddrInfo{ID: e.Peer, Addrs: e.ListenAddrs})
			if t := r.targets[e.Peer]; t != nil && t.connectedAt.IsZero() {
				t.connectedAt = now
			}
		}
	}
}

func (r *runner) handleResult(res dialResult) {
	r.inflight--
	t := r.targets[res.id]
	if t == nil {
		return
	}
	t.dialing = false
	if res.err == nil {
		return // the Connected event sets connectedAt
	}
	// The wait counts from the dial's start: a dial that hung until its
	// timeout has waited already.
	t.failures++
	t.next = t.dialedAt.Add(r.backoff(t))
	r.n.log.Debug("dial failed", "peer", res.id, "bootstrap", t.bootstrap, "failures", t.failures, "err", res.err)
}

// retryKept makes the bootstrap peers and the members reached before
// that are neither connected nor being dialled due now: one of them (except) just connected, so the network
// that failed their dials may be back. Each connection does this once, so
// it costs at most one dial per kept target per connection.
func (r *runner) retryKept(except peer.ID, now time.Time) {
	net := r.n.host.Network()
	for id, t := range r.targets {
		if id != except && t.close() && !t.dialing && t.next.After(now) && net.Connectedness(id) != network.Connected {
			t.next = now
		}
	}
}

// backoff is ReconnectMin·2^failures, capped at ReconnectMax (at
// KeepReconnectMax for bootstrap peers and members reached before), ±20%.
func (r *runner) backoff(t *target) time.Duration {
	ceil := r.n.cfg.ReconnectMax
	if t.close() {
		ceil = min(ceil, r.n.cfg.KeepReconnectMax)
	}
	return backoffDelay(r.n.cfg.ReconnectMin, ceil, t.failures)
}

// backoffDelay is lo·2^failures, capped at hi, ±20%.
func backoffDelay(lo, hi time.Duration, failures int) time.Duration {
	d := lo
	for i := 0; i < failures && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// dialDue starts the dials that are due and returns how long until the
// next one is; ok is false when nothing is waiting on time.
func (r *runner) dialDue() (time.Duration, bool) {
	now := r.n.now()
	net := r.n.host.Network()
	fewPeers := len(net.Peers()) < r.n.cfg.ConnLow
	var next time.Time
	for id, t := range r.targets {
		if t.dialing || net.Connectedness(id) == network.Connected {
			continue
		}
		if !t.kept() && !r.n.mem.has(id) {
			delete(r.targets, id) // forgotten: the memory is bounded, so are targets
			continue
		}
		if !t.kept() && !fewPeers {
			continue // a disconnect event wakes us if that changes
		}
		if t.next.After(now) {
			if next.IsZero() || t.next.Before(next) {
				next = t.next
			}
			continue
		}
		if r.inflight == r.n.cfg.MaxParallelDials {
			continue // a dial result wakes us
		}
		r.dial(t)
	}
	if next.IsZero() {
		return 0, false
	}
	return next.Sub(now), true
}

// dial connects to t in a goroutine owned by Run (r.dials).
func (r *runner) dial(t *target) {
	t.dialing, t.dialedAt = true, r.n.now()
	r.inflight++
	r.dials.Add(1)
	info := t.info
	timeout := r.n.cfg.DialTimeout
	if t.close() && t.failures > 0 {
		// Reconnecting: a dial into a network that drops packets hangs
		// until its timeout; a short one retries sooner once it is back.
		timeout = min(timeout, r.n.cfg.KeepReconnectMax)
		// libp2p's swarm refuses to redial an address for 5s + 1s·tries²
		// after failed dials (minutes, after a long cut); for these peers
		// our own backoff, capped at KeepReconnectMax, decides instead.
		if sw, ok := r.n.host.Network().(*swarm.Swarm); ok {
			sw.Backoff().Clear(t.info.ID)
		}
	}
	member := t.member && !t.bootstrap
	go func() {
		defer r.dials.Done()
		ctx, cancel := context.WithTimeout(r.ctx, timeout)
		defer cancel()
		if member {
			r.results <- dialResult{id: info.ID, err: r.n.dialMember(ctx, info)}
			return
		}
		r.results <- dialResult{id: info.ID, err: r.n.host.Connect(ctx, info)}
	}()
}
