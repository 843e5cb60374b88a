package p2p

import (
	"math"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// inbox stands between the wire and gossipsub's validation queue, which
// every peer and topic share (a bounded FIFO drained by a few workers):
// when one peer's burst fills it, gossipsub drops whatever arrives next,
// honest messages included. So each topic's per-peer token bucket
// (RatePerSecond, RateBurst, WithRateLimit) is applied here, in
// gossipsub's RPC inspector, before anything is queued; and a peer whose
// messages run over budget or are rejected by a validator is scored down
// until gossipsub graylists it (drops its RPCs unread).
//
// The inspector runs on gossipsub's event loop: every method is quick,
// takes one mutex, and never blocks on I/O.
type inbox struct {
	rej  *rejections
	now  func() time.Time
	self peer.ID

	mu      sync.Mutex
	limits  map[string]topicLimits // by topic, while a gate is registered
	buckets map[bucket]*rate.Limiter
	blame   map[peer.ID]*blame
}

type bucket struct {
	peer  peer.ID
	topic string
}

// blame is a peer's decaying count of messages over budget or rejected.
type blame struct {
	n  float64
	at time.Time
}

// Scoring. A peer's blame halves every blameHalfLife; it grows by 1 for
// each message a validator rejected (or whose signature gossipsub found
// invalid) and by overBudgetBlame for each over its rate limit (throttled
// already; only a sustained flood should cost the peer its score). Its
// application score is min(0, blameAllowance - blame): an honest relay
// forwarding a few messages our state refuses keeps a score of 0 (a
// negative score takes a peer out of gossipsub's mesh); a flood of junk
// goes negative after blameAllowance rejected messages, crosses
// graylistScore at blameAllowance-graylistScore (600 rejected, or 6,000
// over budget) and is then ignored by gossipsub (no RPC of it read)
// until its blame decays.
const (
	overBudgetBlame = 0.1
	blameAllowance  = 100
	blameHalfLife   = time.Minute
	gossipScore     = -100
	publishScore    = -250
	graylistScore   = -500
	maxBlamed       = 4096
	validateQueue   = 4096 // gossipsub's default is 32: one peer's burst would fill it
	scoreDecayTick  = time.Second
)

func newInbox(rej *rejections, now func() time.Time, self peer.ID) *inbox {
	return &inbox{rej: rej, now: now, self: self, limits: map[string]topicLimits{},
		buckets: map[bucket]*rate.Limiter{}, blame: map[peer.ID]*blame{}}
}

// options returns the gossipsub options that install the inbox.
func (in *inbox) options() []pubsub.Option {
	return []pubsub.Option{
		pubsub.WithAppSpecificRpcInspector(in.inspect),
		pubsub.WithValidateQueueSize(validateQueue),
		pubsub.WithPeerScore(&pubsub.PeerScoreParams{
			SkipAtomicValidation: true, // topic scores off: only ours counts
			AppSpecificScore:     in.score,
			AppSpecificWeight:    1,
			DecayInterval:        scoreDecayTick,
			DecayToZero:          0.01,
			RetainScore:          10 * time.Minute,
		}, &pubsub.PeerScoreThresholds{
			GossipThreshold:   gossipScore,
			PublishThreshold:  publishScore,
			GraylistThreshold: graylistScore,
		}),
	}
}

func (in *inbox) setLimits(topic string, l topicLimits) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.limits[topic] = l
}

func (in *inbox) dropLimits(topic string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	delete(in.limits, topic)
	for k := range in.buckets {
		if k.topic == topic {
			delete(in.buckets, k)
		}
	}
}

// inspect is gossipsub's RPC inspector. It removes from rpc the messages
// over their sender's budget (and all messages of a graylisted sender),
// recording each; the rest go on to gossipsub's validation queue.
// Messages on topics without a gate are left alone: gossipsub drops those
// of topics we do not subscribe to before queueing them.
func (in *inbox) inspect(from peer.ID, rpc *pubsub.RPC) error {
	if len(rpc.Publish) == 0 || from == in.self {
		return nil
	}
	now := in.now()
	kept := rpc.Publish[:0]
	var dropped []*pb.Message
	in.mu.Lock()
	graylisted := scoreOf(in.blameLocked(from, now)) < graylistScore
	for _, m := range rpc.Publish {
		l, gated := in.limits[m.GetTopic()]
		if !gated || !graylisted && in.allowLocked(from, m.GetTopic(), l, now) {
			kept = append(kept, m)
			continue
		}
		dropped = append(dropped, m)
		if !graylisted {
			in.addBlameLocked(from, overBudgetBlame, now)
		}
	}
	in.mu.Unlock()
	rpc.Publish = kept
	reason := ErrRateLimited
	if graylisted {
		reason = ErrGraylisted
	}
	for _, m := range dropped {
		in.rej.record(now, m.GetTopic(), from, authorID(m.GetFrom()), reason)
	}
	return nil
}

// allowLocked takes one token from (from, topic)'s bucket.
func (in *inbox) allowLocked(from peer.ID, topic string, l topicLimits, now time.Time) bool {
	k := bucket{from, topic}
	b, ok := in.buckets[k]
	if !ok {
		if len(in.buckets) >= maxBuckets {
			for id, old := range in.buckets {
				if old.TokensAt(now) >= float64(old.Burst()) {
					delete(in.buckets, id) // full: forgetting it changes nothing
				}
			}
		}
		b = rate.NewLimiter(rate.Limit(l.perSec), l.burst)
		in.buckets[k] = b
	}
	return b.AllowN(now, 1)
}

// penalize adds n to p's blame: a validator rejected a message p sent us,
// or gossipsub found its signature invalid.
func (in *inbox) penalize(p peer.ID, n float64) {
	if p == in.self || p == "" {
		return
	}
	now := in.now()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.addBlameLocked(p, n, now)
}

func (in *inbox) addBlameLocked(p peer.ID, n float64, now time.Time) {
	b, ok := in.blame[p]
	if !ok {
		if len(in.blame) >= maxBlamed {
			for id := range in.blame {
				if in.blameLocked(id, now) < 1 {
					delete(in.blame, id)
				}
			}
		}
		b = &blame{at: now}
		in.blame[p] = b
	}
	b.n = in.blameLocked(p, now) + n
	b.at = now
}

// blameLocked is p's blame decayed to now.
func (in *inbox) blameLocked(p peer.ID, now time.Time) float64 {
	b, ok := in.blame[p]
	if !ok {
		return 0
	}
	age := now.Sub(b.at)
	if age <= 0 {
		return b.n
	}
	return b.n * math.Exp2(-float64(age)/float64(blameHalfLife))
}

// score is gossipsub's application-specific score of p.
func (in *inbox) score(p peer.ID) float64 {
	now := in.now()
	in.mu.Lock()
	defer in.mu.Unlock()
	return scoreOf(in.blameLocked(p, now))
}

func scoreOf(blame float64) float64 { return min(0, blameAllowance-blame) }

// authorID parses a message's From field; "" when it is not a peer ID.
func authorID(b []byte) peer.ID {
	id, err := peer.IDFromBytes(b)
	if err != nil {
		return ""
	}
	return id
}
