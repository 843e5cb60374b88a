package p2p

import (
	"errors"
	"log/slog"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// Rejection is one kind of message the node refused: everything one peer
// sent on one topic that failed for the same reason. Repeats update the
// entry (Count, Last, Reason) instead of pushing older entries out, so a
// flood from one peer fills one entry.
type Rejection struct {
	// Peer forwarded the messages to us (pubsub's ReceivedFrom); our own
	// ID for messages we tried to publish.
	Peer peer.ID
	// Author is the signed author of the latest message (GetFrom); empty
	// when the message carried none.
	Author peer.ID
	// Topic the messages were published on.
	Topic string
	// Label is the stable reason class the entry and the counter are keyed
	// by: the innermost wrapped error's text, e.g. "p2p: peer rate limited".
	Label string
	// Reason is the full text of the latest rejection, at most 256 bytes.
	Reason string
	// Count is how many messages were refused; First and Last bracket them.
	Count uint64
	First time.Time
	Last  time.Time
}

const (
	maxReasonLen = 256
	maxLabelLen  = 64
	// maxLabels bounds the distinct reason labels (and Prometheus series)
	// per node; further reasons count as "other".
	maxLabels  = 32
	otherLabel = "other"
)

// rejections records refused messages: a bounded list of recent
// (peer, topic, label) entries, totals per label, a Prometheus counter and
// a log line when an entry is new or its count reaches a power of two.
// Safe for concurrent use; it never blocks on I/O other than logging.
type rejections struct {
	log     *slog.Logger
	counter *prometheus.CounterVec // nil: metrics disabled
	limit   int

	mu      sync.Mutex
	entries []Rejection // oldest first, at most limit
	totals  map[string]uint64

	// dropped counts outbound RPCs gossipsub dropped because a peer's
	// send queue was full (messages and control alike).
	dropped     atomic.Uint64
	dropCounter prometheus.Counter // nil: metrics disabled
}

func newRejections(limit int, log *slog.Logger, reg prometheus.Registerer) (*rejections, error) {
	r := &rejections{log: log, limit: limit, totals: make(map[string]uint64)}
	if reg == nil {
		return r, nil
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "pinfold",
		Subsystem: "p2p",
		Name:      "pubsub_rejections_total",
		Help:      "Pubsub messages refused, by topic and reason.",
	}, []string{"topic", "reason"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil, err
		}
		c = existing // several nodes in one process share the series
	}
	r.counter = c
	d := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "pinfold",
		Subsystem: "p2p",
		Name:      "pubsub_dropped_rpcs_total",
		Help:      "Outbound gossipsub RPCs (messages and control) dropped because a peer's send queue was full.",
	})
	if err := reg.Register(d); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		existing, ok := are.ExistingCollector.(prometheus.Counter)
		if !ok {
			return nil, err
		}
		d = existing
	}
	r.dropCounter = d
	return r, nil
}

// dropRPC records an outbound RPC gossipsub dropped.
func (r *rejections) dropRPC() {
	r.dropped.Add(1)
	if r.dropCounter != nil {
		r.dropCounter.Inc()
	}
}

// label reduces err to a bounded reason class: the innermost error of its
// %w chain (normally a package sentinel such as "trust: signature
// invalid"), cut to maxLabelLen bytes.
func label(err error) string {
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			break
		}
		err = inner
	}
	return truncate(err.Error(), maxLabelLen)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// record notes one refused message. now is passed in so tests control time.
func (r *rejections) record(now time.Time, topic string, from, author peer.ID, err error) {
	lbl := label(err)
	reason := truncate(err.Error(), maxReasonLen)

	r.mu.Lock()
	if _, known := r.totals[lbl]; !known && len(r.totals) >= maxLabels {
		lbl = otherLabel
	}
	r.totals[lbl]++
	entry, count := r.upsert(now, topic, from, author, lbl, reason)
	r.mu.Unlock()

	if r.counter != nil {
		r.counter.WithLabelValues(topic, lbl).Inc()
	}
	// Log the first of a kind, then at counts 2, 4, 8, ...: a flood costs
	// log2(n) lines, and nothing is hidden from the counters or the list.
	if count == 1 || bits.OnesCount64(count) == 1 {
		r.log.Warn("pubsub message rejected",
			"topic", topic, "peer", from, "author", author, "reason", reason,
			"count", count, "first", entry.First)
	}
}

// upsert updates or appends the entry for (from, topic, lbl), keeping the
// newest at the end and at most r.limit entries. Callers hold r.mu.
func (r *rejections) upsert(now time.Time, topic string, from, author peer.ID, lbl, reason string) (Rejection, uint64) {
	if r.limit == 0 {
		return Rejection{First: now}, 0 // nothing kept; still counted
	}
	for i := len(r.entries) - 1; i >= 0; i-- {
		e := r.entries[i]
		if e.Peer == from && e.Topic == topic && e.Label == lbl {
			e.Count++
			e.Last, e.Author, e.Reason = now, author, reason
			copy(r.entries[i:], r.entries[i+1:])
			r.entries[len(r.entries)-1] = e
			return e, e.Count
		}
	}
	e := Rejection{Peer: from, Author: author, Topic: topic, Label: lbl, Reason: reason, Count: 1, First: now, Last: now}
	if len(r.entries) == r.limit {
		copy(r.entries, r.entries[1:])
		r.entries = r.entries[:len(r.entries)-1]
	}
	r.entries = append(r.entries, e)
	return e, 1
}

func (r *rejections) list() []Rejection {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Rejection(nil), r.entries...)
}

func (r *rejections) counts() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.totals))
	for k, v := range r.totals {
		out[k] = v
	}
	return out
}

// pubsubDrop is the error recorded for a message gossipsub dropped before
// any topic validator ran (bad signature, full validation queue, ...).
type pubsubDrop struct{ reason string }

func (e pubsubDrop) Error() string { return "pubsub: " + e.reason }

// tracer hooks gossipsub's RawTracer so drops that happen before our
// validators (signature checks, queue overflow) and deliveries lost to a
// slow subscriber are recorded too. Gossipsub calls it synchronously from
// its own goroutines; record is quick and does not block on the network.
//
// It also follows gossipsub's mesh (Graft, Prune, Leave, a closed peer
// stream) for Topic.MeshPeers.
type tracer struct {
	rej  *rejections
	now  func() time.Time
	mesh *meshView
	in   *inbox
}

var _ pubsub.RawTracer = tracer{}

func (t tracer) RejectMessage(msg *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationFailed, pubsub.RejectValidationIgnored:
		return // our validators recorded these with the real reason
	case pubsub.RejectSelfOrigin:
		return // our own message coming back: normal
	}
	if reason == pubsub.RejectInvalidSignature && t.in != nil {
		t.in.penalize(msg.ReceivedFrom, 1)
	}
	t.rej.record(t.now(), msg.GetTopic(), msg.ReceivedFrom, author(msg), pubsubDrop{reason})
}

func (t tracer) UndeliverableMessage(msg *pubsub.Message) {
	t.rej.record(t.now(), msg.GetTopic(), msg.ReceivedFrom, author(msg), pubsubDrop{"subscriber too slow, message dropped"})
}

func (tracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (t tracer) OnClosedOutboundStream(p peer.ID)       { t.mesh.dropPeer(p) }
func (t tracer) Leave(topic string)                     { t.mesh.dropTopic(topic) }
func (t tracer) Graft(p peer.ID, topic string)          { t.mesh.graft(p, topic) }
func (t tracer) Prune(p peer.ID, topic string)          { t.mesh.prune(p, topic) }
func (tracer) Join(string)                              {}
func (tracer) ValidateMessage(*pubsub.Message)          {}
func (tracer) DeliverMessage(*pubsub.Message)           {}
func (tracer) DuplicateMessage(*pubsub.Message)         {}
func (tracer) ThrottlePeer(peer.ID)                     {}
func (tracer) RecvRPC(*pubsub.RPC)                      {}
func (tracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (t tracer) DropRPC(*pubsub.RPC, peer.ID)           { t.rej.dropRPC() }

// author returns the signed author of msg, or "" when it has none or it
// does not parse.
func author(msg *pubsub.Message) peer.ID {
	id := msg.GetFrom()
	if id.Validate() != nil {
		return ""
	}
	return id
}

// meshView mirrors gossipsub's mesh: topic -> peers we exchange full
// messages with. Safe for concurrent use; a nil view ignores updates.
type meshView struct {
	mu    sync.Mutex
	peers map[string]map[peer.ID]struct{}
}

func newMeshView() *meshView { return &meshView{peers: make(map[string]map[peer.ID]struct{})} }

func (m *meshView) graft(p peer.ID, topic string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.peers[topic] == nil {
		m.peers[topic] = make(map[peer.ID]struct{})
	}
	m.peers[topic][p] = struct{}{}
}

func (m *meshView) prune(p peer.ID, topic string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.peers[topic], p)
}

func (m *meshView) dropTopic(topic string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.peers, topic)
}

func (m *meshView) dropPeer(p peer.ID) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ps := range m.peers {
		delete(ps, p)
	}
}

// list returns the mesh peers of topic, sorted.
func (m *meshView) list(topic string) []peer.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]peer.ID, 0, len(m.peers[topic]))
	for p := range m.peers[topic] {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
