package headsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/publish"
	"github.com/pinfold/pinfold/trust"
)

// ProtocolID returns the head protocol of a cluster: a peer opens a stream,
// the other side writes its newest announcement and closes.
func ProtocolID(clusterID string) protocol.ID {
	return protocol.ID("/pinfold/" + clusterID + "/head/1.0.0")
}

// Net connects a Sync to the network: the heads topic, the head protocol
// (served and asked), and announcing local heads.
type Net struct {
	s          *Sync
	node       *p2p.Node
	topic      *p2p.Topic
	proto      protocol.ID
	chainProto protocol.ID
	serving    chan struct{} // bounds concurrent chain requests served
	// AskEvery is how often connected peers are asked for their newest head.
	askEvery time.Duration
}

// Attach joins the heads topic (its validator registered first) and serves
// the head protocol on node. Close the Net to leave.
func Attach(s *Sync, node *p2p.Node, topic string, clusterID string, askEvery time.Duration) (*Net, error) {
	n := &Net{s: s, node: node, proto: ProtocolID(clusterID), chainProto: ChainProtocolID(s.cfg.Name.String()),
		serving: make(chan struct{}, maxServing), askEvery: askEvery}
	t, err := node.JoinTopic(topic, n.validate, p2p.WithMaxSize(MaxAnnouncement))
	if err != nil {
		return nil, fmt.Errorf("headsync: %w", err)
	}
	n.topic = t
	node.Host().SetStreamHandler(n.proto, n.serve)
	node.Host().SetStreamHandler(n.chainProto, n.serveChain)
	s.setFetcher(n)
	return n, nil
}

// Close stops serving and leaves the topic.
func (n *Net) Close() error {
	n.s.setFetcher(nil)
	n.node.Host().RemoveStreamHandler(n.chainProto)
	n.node.Host().RemoveStreamHandler(n.proto)
	return n.topic.Close()
}

// validate runs before gossipsub delivers or forwards a head
// announcement: no network, only the bytes and our newest head. A record
// must verify against the cluster name; a head must be signed by a key of
// the trust set of the newest head (one ed25519 verification), and not be
// older than it. Junk is rejected (its sender blamed); what an honest
// peer may forward in good faith (a head signed by a curator we do not
// know yet, a head or record older than ours) is ignored. Full chain
// verification happens in Consider.
func (n *Net) validate(_ context.Context, msg *pubsub.Message) error {
	a, err := DecodeAnnouncement(msg.Data)
	if err != nil {
		return err
	}
	if _, err := n.s.precheck(a, FromTopic, n.s.now()); err != nil {
		if errors.Is(err, trust.ErrUntrustedSigner) || errors.Is(err, trust.ErrStaleSeq) || errors.Is(err, publish.ErrExpired) {
			return p2p.Ignore(err)
		}
		return err
	}
	return nil
}

// Announce publishes the newest head and record on the topic.
func (n *Net) Announce(ctx context.Context) error {
	a, ok := n.s.Announcement()
	if !ok {
		return errors.New("headsync: no head to announce")
	}
	data, err := a.Encode()
	if err != nil {
		return err
	}
	return n.topic.Publish(ctx, data)
}

const serveTimeout = 10 * time.Second

func (n *Net) serve(st network.Stream) {
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(serveTimeout))
	a, ok := n.s.Announcement()
	if !ok {
		_ = st.Reset()
		return
	}
	data, err := a.Encode()
	if err != nil {
		_ = st.Reset()
		return
	}
	_, _ = st.Write(data)
}

// Ask fetches a peer's newest announcement over the head protocol, within
// Limits.AskTimeout.
func (n *Net) Ask(ctx context.Context, p peer.ID) (Announcement, error) {
	ctx, cancel := context.WithTimeout(ctx, n.s.cfg.Limits.AskTimeout)
	defer cancel()
	st, err := n.node.Host().NewStream(ctx, p, n.proto)
	if err != nil {
		return Announcement{}, fmt.Errorf("ask %s: %w", p, err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	_ = st.CloseWrite()
	data, err := io.ReadAll(io.LimitReader(st, MaxAnnouncement+1))
	if err != nil {
		return Announcement{}, fmt.Errorf("ask %s: %w", p, err)
	}
	a, err := DecodeAnnouncement(data)
	if err != nil {
		return Announcement{}, fmt.Errorf("ask %s: %w", p, err)
	}
	return a, nil
}

// Run receives announcements from the topic, asks each peer for its
// newest head once a connection to it is identified, and asks connected
// peers for theirs every askEvery (at once, then often until a first head beyond the
// checkpoint is known); when the node runs a DHT, it asks the DHT for the
// cluster's IPNS record on the same cadence. It returns when ctx ends,
// after the goroutines it started (the asking loop, candidates fetching
// blocks) have returned.
//
// A topic announcement whose blocks are all local (the usual case: a
// child of the newest head) is considered in order on Run's goroutine.
// One that needs blocks is held (the newest such, one at a time) rather
// than fetched at once: gossipsub validates messages concurrently, so a
// head may be delivered just before its parent, which then completes it
// from local blocks. Each adoption considers the held announcement again;
// if it still lacks blocks after holdFor, it is handed to a goroutine of
// its own that fetches them, within the per-peer budget (Limits), so it
// delays nothing else. While that peer's budget is spent the announcement
// stays held (a newer one replaces it) until a fetch ends, instead of
// being dropped until the next poll.
func (n *Net) Run(ctx context.Context) error {
	sub, err := n.topic.Subscribe()
	if err != nil {
		return err
	}
	defer sub.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan *pubsub.Message)
	wg.Go(func() { // ends when ctx ends or the subscription closes
		defer close(msgs)
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	})
	wg.Go(func() { n.poll(ctx) }) // ends with ctx
	newPeers, err := n.node.Host().EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted),
		eventbus.BufSize(64), eventbus.Name("pinfold-headsync-new-peers"))
	if err != nil {
		return fmt.Errorf("headsync: subscribe to host events: %w", err)
	}
	defer newPeers.Close()                          // runs before wg.Wait: askNew sees the channel closed
	wg.Go(func() { n.askNew(ctx, newPeers.Out()) }) // ends with ctx
	var h *heldAnnouncement
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	defer wait.Stop()
	fetched := make(chan struct{}, 1)
	// retry considers the held announcement again from local blocks and,
	// if it still needs blocks and fetch is set, fetches them when the
	// budget allows.
	retry := func(fetch bool) {
		if h == nil {
			return
		}
		if _, err := n.s.considerAs(ctx, h.a, FromTopic, h.from, false); !errors.Is(err, errNeedBlocks) {
			h = nil // adopted, known, or refused (and recorded)
			wait.Stop()
			return
		}
		if !fetch || n.s.budget.busy(h.from) {
			return
		}
		a, from := h.a, h.from
		h = nil
		wg.Go(func() { // ends within FetchTimeout
			_, _ = n.s.Consider(ctx, a, FromTopic, from)
			select {
			case fetched <- struct{}{}:
			default:
			}
		})
	}
	for {
		changed := n.s.Changed()
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			retry(h != nil && time.Since(h.since) >= holdFor)
		case <-wait.C:
			retry(true)
		case <-fetched:
			retry(h != nil && time.Since(h.since) >= holdFor)
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			if m.ReceivedFrom == n.node.ID() {
				continue // our own announcement
			}
			a, err := DecodeAnnouncement(m.Data)
			if err != nil {
				continue // the validator already refused and recorded it
			}
			from := m.GetFrom()
			if _, err := n.s.considerAs(ctx, a, FromTopic, from, false); !errors.Is(err, errNeedBlocks) {
				retry(false) // it may have completed the held one
				continue
			}
			seq := announcedSeq(a)
			if h != nil && seq >= 0 && seq < h.seq {
				continue // older than the one held
			}
			if h == nil {
				wait.Reset(holdFor)
			}
			h = &heldAnnouncement{a: a, from: from, seq: seq, since: time.Now()}
		}
	}
}

// holdFor is how long a topic announcement that lacks blocks waits for
// them to arrive on the topic before they are fetched.
const holdFor = 500 * time.Millisecond

// heldAnnouncement is a topic announcement that needs blocks, waiting.
type heldAnnouncement struct {
	a     Announcement
	from  peer.ID
	seq   int64 // -1: unknown (a record alone)
	since time.Time
}

// announcedSeq is the seq of the head an announcement carries, or -1.
func announcedSeq(a Announcement) int64 {
	if a.Head == nil {
		return -1
	}
	sh, err := dag.DecodeSignedHead(a.Head)
	if err != nil {
		return -1
	}
	return sh.Head.Seq
}

// poll asks peers (and the DHT) for their newest head every askEvery, or
// every second until a head beyond the checkpoint is known, until ctx
// ends.
func (n *Net) poll(ctx context.Context) {
	tick := time.NewTimer(0)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n.askAll(ctx)
		n.askDHT(ctx)
		next := n.askEvery
		if v, ok := n.s.Newest(); !ok || v.Head.Seq == n.s.cfg.CheckpointSeq {
			next = min(next, time.Second)
		}
		tick.Reset(next)
	}
}

// dhtTimeout bounds one DHT lookup of the cluster's record.
const dhtTimeout = 30 * time.Second

// askDHT looks up the cluster's IPNS record in the DHT, if the node runs
// one, and considers it like a record from a peer: Consider verifies the
// record against the cluster name, fetches the head it names and verifies
// that head's chain. A missing record is not a rejection; an invalid one
// is recorded like any other.
func (n *Net) askDHT(ctx context.Context) {
	if !n.node.DHTEnabled() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, dhtTimeout)
	defer cancel()
	raw, err := n.node.GetRecord(ctx, n.s.cfg.Name)
	if err != nil {
		n.s.log.Debug("dht lookup", "name", n.s.cfg.Name, "err", err)
		return
	}
	if rec, ok := n.s.Record(); ok && bytes.Equal(rec.Raw, raw) {
		return // the record we hold already
	}
	_, _ = n.s.Consider(ctx, Announcement{Record: raw}, FromDHT, "")
}

// askNew asks each peer that speaks the head protocol for its newest head
// as soon as a connection to it is identified, so that a follower back
// from a partition (or just started) learns what it missed without
// waiting for the next announcement or poll. One peer at a time, each
// ask within Limits.AskTimeout; identifications arriving meanwhile queue
// in the subscription's buffer, and the event bus drops what overflows
// (the next poll covers them). It returns when ctx ends.
func (n *Net) askNew(ctx context.Context, evs <-chan any) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-evs:
			if !ok {
				return
			}
			e, _ := ev.(event.EvtPeerIdentificationCompleted)
			if e.Peer == "" || e.Peer == n.node.ID() || !slices.Contains(e.Protocols, n.proto) {
				continue
			}
			a, err := n.Ask(ctx, e.Peer)
			if err != nil {
				n.s.log.Debug("ask new peer for its head", "peer", e.Peer, "err", err)
				continue
			}
			_, _ = n.s.Consider(ctx, a, FromPeer, e.Peer)
		}
	}
}

// askAll asks every connected peer that speaks the head protocol.
func (n *Net) askAll(ctx context.Context) {
	h := n.node.Host()
	for _, p := range h.Network().Peers() {
		if ok, _ := h.Peerstore().SupportsProtocols(p, n.proto); len(ok) == 0 {
			continue
		}
		a, err := n.Ask(ctx, p)
		if err != nil {
			continue
		}
		_, _ = n.s.Consider(ctx, a, FromPeer, p)
	}
}
