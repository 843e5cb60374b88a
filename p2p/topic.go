package p2p

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Validator decides whether a message received on a topic may be delivered
// and forwarded. It returns nil to accept; any error rejects the message,
// is recorded with the error's text, and makes gossipsub drop it.
//
// msg.ReceivedFrom is the peer that forwarded the message to us, not its
// author. Authorization (is the author a curator? did the follower sign
// its own offer?) must use msg.GetFrom(), the author whose signature
// gossipsub has verified (strict signing) before the validator runs.
//
// Validators run concurrently, for messages from the network and for our
// own Publish, with a context cancelled after Config.ValidateTimeout. They
// must not block on the network: decide from the bytes and local state.
type Validator func(ctx context.Context, msg *pubsub.Message) error

// TopicOption changes one topic's limits from the Config defaults.
type TopicOption func(*topicLimits)

type topicLimits struct {
	maxSize int
	perSec  float64
	burst   int
}

// WithMaxSize limits a topic's payload (msg.Data) to n bytes; n is capped
// at Config.MaxMessageSize - TopicOverhead.
func WithMaxSize(n int) TopicOption {
	return func(l *topicLimits) { l.maxSize = min(n, l.maxSize) }
}

// WithRateLimit sets a topic's per-peer token bucket: burst messages at
// once, refilled at perSecond. Values <= 0 keep the Config defaults.
func WithRateLimit(perSecond float64, burst int) TopicOption {
	return func(l *topicLimits) {
		if perSecond > 0 {
			l.perSec = perSecond
		}
		if burst > 0 {
			l.burst = burst
		}
	}
}

// gate is the validator gossipsub calls for one topic: size limit, then
// rate limit, then the caller's Validator. Each stage's refusal is
// recorded.
type gate struct {
	topic    string
	limits   topicLimits
	validate Validator
	rej      *rejections
	in       *inbox
	now      func() time.Time
	self     peer.ID // our own messages pass the gate when we publish
}

// maxBuckets triggers a sweep of full (idle) buckets; forgetting a full
// bucket changes nothing, since a new one starts full.
const maxBuckets = 1024

// check runs the gate on msg and returns gossipsub's verdict. The topic's
// per-peer rate limit ran before (see inbox), when the message was read.
// A refusal is recorded; a rejection (not an ignore) also blames the peer
// that sent the message, which lowers its gossipsub score.
func (g *gate) check(ctx context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	from := msg.ReceivedFrom
	if len(msg.Data) > g.limits.maxSize {
		g.rej.record(g.now(), g.topic, from, author(msg),
			fmt.Errorf("%d bytes over the %d byte limit: %w", len(msg.Data), g.limits.maxSize, ErrTooLarge))
		g.in.penalize(from, 1)
		return pubsub.ValidationReject
	}
	if err := g.run(ctx, msg); err != nil {
		var ig ignored
		isIgnore := errors.As(err, &ig)
		if isIgnore && from == g.self {
			// Our own message, not sent now (it names state our own
			// validator has not taken in yet, say): the publisher gets
			// the error and decides; nothing was refused from anyone.
			return pubsub.ValidationIgnore
		}
		g.rej.record(g.now(), g.topic, from, author(msg), err)
		if isIgnore {
			return pubsub.ValidationIgnore
		}
		g.in.penalize(from, 1)
		return pubsub.ValidationReject
	}
	return pubsub.ValidationAccept
}

// Ignore marks a validator's error as an ignore rather than a rejection:
// the message is dropped and not forwarded, and recorded, but the peer
// that sent it is not blamed. Use it for messages an honest peer may
// forward in good faith (one whose state is ahead of ours, say).
func Ignore(err error) error {
	if err == nil {
		return nil
	}
	return ignored{err}
}

type ignored struct{ err error }

func (e ignored) Error() string { return e.err.Error() }
func (e ignored) Unwrap() error { return e.err }

// run calls the caller's validator, turning a panic into an error: input
// from the network must never take the process down.
func (g *gate) run(ctx context.Context, msg *pubsub.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrValidatorPanic, r)
		}
	}()
	return g.validate(ctx, msg)
}

// RegisterValidator installs the gate (size limit, per-peer rate limit,
// validate) for topic name without joining it. Use it before handing
// PubSub() to code that joins the topic itself, such as go-ds-crdt's
// NewPubSubBroadcaster, which subscribes at once: a message that arrives
// before the validator is registered is delivered unchecked.
func (n *Node) RegisterValidator(name string, validate Validator, opts ...TopicOption) error {
	_, err := n.registerGate(name, validate, opts)
	return err
}

func (n *Node) registerGate(name string, validate Validator, opts []TopicOption) (*gate, error) {
	if n.isClosed() {
		return nil, ErrClosed
	}
	if name == "" || len(name) > maxTopicName {
		return nil, fmt.Errorf("p2p: topic name must be 1 to %d bytes", maxTopicName)
	}
	if validate == nil {
		return nil, fmt.Errorf("p2p: topic %s: nil validator", name)
	}
	limits := topicLimits{
		maxSize: n.cfg.MaxMessageSize - TopicOverhead,
		perSec:  n.cfg.RatePerSecond,
		burst:   n.cfg.RateBurst,
	}
	for _, o := range opts {
		o(&limits)
	}
	g := &gate{topic: name, limits: limits, validate: validate, rej: n.rej, in: n.inbox, now: n.now, self: n.host.ID()}
	err := n.ps.RegisterTopicValidator(name, g.check, pubsub.WithValidatorTimeout(n.cfg.ValidateTimeout))
	if err != nil {
		return nil, fmt.Errorf("register validator for %s: %w", name, err)
	}
	n.inbox.setLimits(name, limits)
	return g, nil
}

// UnregisterValidator removes what RegisterValidator installed.
func (n *Node) UnregisterValidator(name string) error {
	if n.isClosed() {
		return ErrClosed
	}
	n.inbox.dropLimits(name)
	if err := n.ps.UnregisterTopicValidator(name); err != nil {
		return fmt.Errorf("unregister validator for %s: %w", name, err)
	}
	return nil
}

const maxTopicName = 256

// Topic is a joined gossipsub topic whose incoming messages pass the gate
// (size, per-peer rate, validator) before delivery or forwarding.
type Topic struct {
	n     *Node
	name  string
	t     *pubsub.Topic
	limit int

	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

// JoinTopic registers validate (wrapped in the size and rate limits) for
// topic name and only then joins it, so no message is ever delivered
// unchecked. Close the Topic to leave.
func (n *Node) JoinTopic(name string, validate Validator, opts ...TopicOption) (*Topic, error) {
	g, err := n.registerGate(name, validate, opts)
	if err != nil {
		return nil, err
	}
	t, err := n.ps.Join(name)
	if err != nil {
		_ = n.UnregisterValidator(name)
		return nil, fmt.Errorf("join %s: %w", name, err)
	}
	return &Topic{n: n, name: name, t: t, limit: g.limits.maxSize, subs: make(map[*Subscription]struct{})}, nil
}

// JoinRawTopic is JoinTopic for libraries that publish and subscribe
// through gossipsub themselves (go-ds-crdt's broadcaster): the gate is
// registered first, so every refusal is counted and logged like any
// topic's, and the raw topic is returned. The caller closes it, then
// calls UnregisterValidator.
func (n *Node) JoinRawTopic(name string, validate Validator, opts ...TopicOption) (*pubsub.Topic, error) {
	if _, err := n.registerGate(name, validate, opts); err != nil {
		return nil, err
	}
	t, err := n.ps.Join(name)
	if err != nil {
		_ = n.UnregisterValidator(name)
		return nil, fmt.Errorf("join %s: %w", name, err)
	}
	return t, nil
}

// Name returns the topic name.
func (t *Topic) Name() string { return t.name }

// meshWait bounds how long Publish waits for a mesh to form: two
// gossipsub heartbeats.
const meshWait = 2 * time.Second

// Publish signs data and sends it to the topic. It runs our own validator
// first (a rejection is recorded with our peer ID and Publish fails; an
// ignore fails it too, unrecorded, and nothing is sent), but not the
// rate limit. Data over the topic's size limit fails with
// ErrTooLarge. Our own subscriptions receive the message too.
//
// When peers are subscribed but our mesh for the topic is still empty
// (the first second after joining, before gossipsub's heartbeat grafts
// them), gossipsub would send the message to no one, and may never
// gossip it either. Publish therefore waits up to meshWait (bounded by
// ctx) for a mesh peer, then sends anyway.
func (t *Topic) Publish(ctx context.Context, data []byte) error {
	if len(data) > t.limit {
		return fmt.Errorf("publish on %s: %d bytes over the %d byte limit: %w", t.name, len(data), t.limit, ErrTooLarge)
	}
	var err error
	if len(t.t.ListPeers()) > 0 {
		readyCtx, cancel := context.WithTimeout(ctx, meshWait)
		err = t.t.Publish(readyCtx, data, pubsub.WithReadiness(pubsub.MinTopicSize(1)))
		timedOut := readyCtx.Err() != nil
		cancel()
		// Gossipsub checks the context only before it validates and
		// sends, so a context error means nothing was sent.
		if err != nil && timedOut && ctx.Err() == nil {
			err = t.t.Publish(ctx, data)
		}
	} else {
		err = t.t.Publish(ctx, data)
	}
	if err != nil {
		return fmt.Errorf("publish on %s: %w", t.name, err)
	}
	return nil
}

// Peers returns the connected peers subscribed to the topic.
func (t *Topic) Peers() []peer.ID { return t.t.ListPeers() }

// MeshPeers returns the peers gossipsub currently sends this topic's full
// messages to (its mesh), sorted. A subscribed peer joins the mesh at the
// next heartbeat (about a second); a message forwarded before that can
// miss it, which is why senders of state (heads, CRDT broadcasts)
// republish.
func (t *Topic) MeshPeers() []peer.ID { return t.n.mesh.list(t.name) }

// Subscribe starts receiving the topic's accepted messages. Close the
// Subscription (or the Topic, or the Node) to stop.
func (t *Topic) Subscribe() (*Subscription, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	s, err := t.t.Subscribe(pubsub.WithBufferSize(t.n.cfg.SubscriptionBuffer))
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", t.name, err)
	}
	sub := &Subscription{s: s, topic: t}
	t.subs[sub] = struct{}{}
	return sub, nil
}

// Close cancels the topic's subscriptions, leaves the topic and removes
// its validator. It is idempotent.
func (t *Topic) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	for s := range t.subs {
		s.s.Cancel()
	}
	t.subs = nil
	t.mu.Unlock()
	if t.n.isClosed() {
		return nil // pubsub is gone already
	}
	if err := t.t.Close(); err != nil {
		return fmt.Errorf("close topic %s: %w", t.name, err)
	}
	return t.n.UnregisterValidator(t.name)
}

// Subscription delivers a topic's accepted messages in arrival order.
type Subscription struct {
	s     *pubsub.Subscription
	topic *Topic
}

// Next blocks until the next accepted message, ctx is done, or the
// subscription is closed. msg.GetFrom() is the verified author;
// msg.ReceivedFrom is the peer that forwarded it.
func (s *Subscription) Next(ctx context.Context) (*pubsub.Message, error) {
	// Gossipsub does not end subscriptions when it stops; the node's
	// life context does.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.topic.n.life, cancel)()
	msg, err := s.s.Next(ctx)
	if err != nil {
		if s.topic.n.isClosed() {
			err = ErrClosed
		}
		return nil, fmt.Errorf("next on %s: %w", s.topic.name, err)
	}
	return msg, nil
}

// Close stops the subscription; a pending Next returns an error.
func (s *Subscription) Close() {
	s.topic.mu.Lock()
	if s.topic.subs != nil {
		delete(s.topic.subs, s)
	}
	s.topic.mu.Unlock()
	s.s.Cancel()
}
