package follower

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/records"
)

// Peering: a follower keeps connections to a bounded set of other members
// (p2p.Config.KeepMembers), so that followers exchange heads, the pinset
// and content among themselves when no curator is reachable. Members'
// addresses come from the cluster DHT (on by default): the node looks a
// kept member up when it dials it (p2p.SetMembers). Only with the cluster
// DHT off does a follower read the offers topic for the addresses in
// members' signed offers: subscribed to it, a follower receives and
// relays every member's offer, which at 10,000 members is 500 messages a
// second to each (docs/scale.md), where only curators need them.
// Addresses, from either, are only used to dial, never to trust anyone.
// Only members of the newest planned head are
// kept; the holders of this follower's own shards (the peers it fetches
// from and serves) come first, then the other live members, then those
// the head marks offline, each group in an order that differs from one
// follower to the next, so the connections spread over the cluster.

// maxOffersKept bounds the offers remembered, one per peer: a peer that
// is not a member yet (or no longer) costs at most one slot, and the
// oldest offers are forgotten first.
const maxOffersKept = 4096

// memberAddrs holds the addresses of the newest offer of each peer.
// Safe for concurrent use.
type memberAddrs struct {
	mu    sync.Mutex
	byID  map[peer.ID]offerAddrs
	wake  chan struct{}
	limit int
}

type offerAddrs struct {
	time  int64 // the offer's signed time
	addrs []ma.Multiaddr
}

func newMemberAddrs(limit int) *memberAddrs {
	return &memberAddrs{byID: make(map[peer.ID]offerAddrs), wake: make(chan struct{}, 1), limit: limit}
}

// add records the addresses of offer o if it is newer than the one held
// for its peer. Addresses that do not parse are skipped (their number and
// size are bounded by the offer's checks, dag.MaxAddrs and MaxAddrLen).
// It reports whether anything changed.
func (m *memberAddrs) add(o dag.Offer) bool {
	id, err := peer.IDFromBytes(o.Peer)
	if err != nil {
		return false
	}
	var addrs []ma.Multiaddr
	for _, b := range o.Addrs {
		if a, err := ma.NewMultiaddrBytes(b); err == nil {
			addrs = append(addrs, a)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.byID[id]; ok && old.time >= o.Time {
		return false
	}
	if _, ok := m.byID[id]; !ok && len(m.byID) >= m.limit {
		var oldest peer.ID
		var t int64
		for p, oa := range m.byID {
			if oldest == "" || oa.time < t {
				oldest, t = p, oa.time
			}
		}
		if t >= o.Time {
			return false // older than everything kept
		}
		delete(m.byID, oldest)
	}
	m.byID[id] = offerAddrs{time: o.Time, addrs: addrs}
	m.poke()
	return true
}

// poke wakes peeringLoop.
func (m *memberAddrs) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *memberAddrs) get(id peer.ID) []ma.Multiaddr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byID[id].addrs
}

// peerCandidate is one member in rankMembers' input.
type peerCandidate struct {
	id      peer.ID
	coHold  bool // holds a shard this follower holds
	offline bool // the head marks it offline
}

// rankMembers orders candidates for keeping: co-holders first, then live
// members, then offline ones; within a group by a hash of (self, peer),
// so that different followers prefer different peers.
func rankMembers(self peer.ID, cs []peerCandidate) []peer.ID {
	type ranked struct {
		c    peerCandidate
		hash [32]byte
	}
	rs := make([]ranked, 0, len(cs))
	for _, c := range cs {
		if c.id == self {
			continue
		}
		rs = append(rs, ranked{c: c, hash: sha256.Sum256([]byte(string(self) + string(c.id)))})
	}
	group := func(c peerCandidate) int {
		switch {
		case c.coHold:
			return 0
		case !c.offline:
			return 1
		}
		return 2
	}
	slices.SortFunc(rs, func(a, b ranked) int {
		if ga, gb := group(a.c), group(b.c); ga != gb {
			return ga - gb
		}
		return bytes.Compare(a.hash[:], b.hash[:])
	})
	out := make([]peer.ID, len(rs))
	for i, r := range rs {
		out[i] = r.c.id
	}
	return out
}

// readOffers records the addresses in the offers other members publish,
// until ctx ends, when the cluster DHT is off (with it, it returns at
// once and never subscribes). The topic's validator checked each offer's
// signature and that its signer published it.
func (d *Daemon) readOffers(ctx context.Context) error {
	if d.node.ClusterDHTEnabled() {
		return nil
	}
	return readTopic(ctx, d.offers, func(m *pubsub.Message) {
		so, err := records.VerifiedOffer(d.rules.Cluster, m)
		if err == nil && peer.ID(so.Offer.Peer) != d.l.ID {
			d.memberAddrs.add(so.Offer)
		}
	})
}

// peeringLoop hands the node the members to keep, ranked, whenever an
// offer brings new addresses or a new head is planned (at most once per
// peeringGap: offers of a large cluster arrive many a
// second), and every peeringEvery, until ctx ends.
func (d *Daemon) peeringLoop(ctx context.Context) error {
	tick := time.NewTicker(peeringEvery)
	defer tick.Stop()
	gap := time.NewTimer(0)
	defer gap.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-gap.C:
		}
		d.setMembers()
		gap.Reset(peeringGap)
		select {
		case <-ctx.Done():
			return nil
		case <-d.memberAddrs.wake:
		case <-tick.C:
		}
	}
}

const (
	peeringEvery = 10 * time.Second
	peeringGap   = time.Second
)

// setMembers ranks the members of the newest plan and gives the node
// the first of them, with the addresses of their offers where known (the
// node looks the others up in the cluster DHT, or skips them without it).
func (d *Daemon) setMembers() {
	s := d.shards
	s.mu.Lock()
	plan := s.plan
	var coHolders map[peer.ID]bool
	if plan != nil {
		coHolders = make(map[peer.ID]bool)
		for id := range s.mine {
			hs, _ := plan.Holders(id)
			for _, h := range hs {
				coHolders[peer.ID(h)] = true
			}
		}
	}
	s.mu.Unlock()
	if plan == nil {
		return // no head planned yet: nobody is known to be a member
	}
	var cs []peerCandidate
	for _, m := range plan.Members() {
		id := peer.ID(m.Peer)
		cs = append(cs, peerCandidate{id: id, coHold: coHolders[id], offline: m.Offline})
	}
	var list []peer.AddrInfo
	for _, id := range rankMembers(d.l.ID, cs) {
		list = append(list, peer.AddrInfo{ID: id, Addrs: d.memberAddrs.get(id)})
	}
	d.node.SetMembers(list)
}

// watchCurators keeps noCurator: since when no key of the trust set (the
// newest head's, else the cluster config's) has been connected, checked
// every second until ctx ends. While no curator is reachable the pinset
// may be behind whatever the replica holds, and status says so.
//
// A connection into a network that went away stays open until its
// muxer's keep-alive fails (tens of seconds), so every curatorPingEvery
// it pings the curators it is connected to, and closes the connection to
// one that does not answer within curatorPingTimeout: status then says
// so, and the node redials it (see p2p.Run).
func (d *Daemon) watchCurators(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var pings sync.WaitGroup
	defer pings.Wait()
	var pinging atomic.Bool
	lastPing := d.now()
	for {
		trustSet := d.trustSet()
		reached := slices.ContainsFunc(trustSet, d.node.ConnectedTo)
		d.mu.Lock()
		lost, since := !reached && d.noCurator.IsZero(), d.noCurator
		switch {
		case reached:
			d.noCurator = time.Time{}
		case lost:
			d.noCurator = d.now()
		}
		d.mu.Unlock()
		switch {
		case lost:
			d.event("curators", "no curator reachable; the pinset may be behind")
		case reached && !since.IsZero() && since != d.started:
			d.event("curators", fmt.Sprintf("a curator is reachable again, after %s", d.now().Sub(since).Round(time.Second)))
		}
		if reached && d.now().Sub(lastPing) >= curatorPingEvery && pinging.CompareAndSwap(false, true) {
			lastPing = d.now()
			pings.Go(func() { // owned by watchCurators: waited for when it returns
				defer pinging.Store(false)
				d.pingCurators(ctx, trustSet)
			})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

const (
	curatorPingEvery   = 5 * time.Second
	curatorPingTimeout = 5 * time.Second
	maxCuratorPings    = 16 // curators pinged per round, at most
)

// pingCurators pings the connected curators of trustSet at once and
// closes the connections of those that do not answer in time.
func (d *Daemon) pingCurators(ctx context.Context, trustSet []peer.ID) {
	h := d.node.Host()
	var wg sync.WaitGroup
	n := 0
	for _, id := range trustSet {
		if n == maxCuratorPings || !d.node.ConnectedTo(id) {
			continue
		}
		n++
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, curatorPingTimeout)
			defer cancel()
			res, ok := <-ping.Ping(pctx, h, id)
			if ctx.Err() != nil || (ok && res.Error == nil) {
				return
			}
			err := pctx.Err()
			if ok && res.Error != nil {
				err = res.Error
			}
			d.log.Info("curator does not answer pings; closing its connection", "peer", id, "err", err)
			_ = h.Network().ClosePeer(id)
		})
	}
	wg.Wait()
}

// trustSet is the newest head's trust set, or the cluster config's before
// the first head.
func (d *Daemon) trustSet() []peer.ID {
	v, ok := d.heads.Newest()
	if !ok {
		return d.rules.Trust
	}
	out := make([]peer.ID, 0, len(v.Head.Trust))
	for _, t := range v.Head.Trust {
		out = append(out, peer.ID(t))
	}
	return out
}

// NoCuratorSince returns since when no curator has been reachable; zero
// while one is connected.
func (d *Daemon) NoCuratorSince() time.Time {
	if slices.ContainsFunc(d.trustSet(), d.node.ConnectedTo) {
		return time.Time{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.noCurator.IsZero() { // lost since watchCurators last looked
		return d.now()
	}
	return d.noCurator
}
