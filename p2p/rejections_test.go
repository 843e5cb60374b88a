package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

var errSentinel = errors.New("trust: signature invalid")

func TestLabel(t *testing.T) {
	long := errors.New(strings.Repeat("x", 300))
	tests := []struct {
		err  error
		want string
	}{
		{errSentinel, "trust: signature invalid"},
		{fmt.Errorf("verify head bafy: %w", errSentinel), "trust: signature invalid"},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", ErrTooLarge)), "p2p: message too large"},
		{errors.New("plain"), "plain"},
		{long, strings.Repeat("x", maxLabelLen)},
	}
	for _, tt := range tests {
		if got := label(tt.err); got != tt.want {
			t.Errorf("label(%q) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// refRejections is the reference model: a plain list, newest last, where
// a repeat of (peer, topic, label) moves to the end with its count bumped.
type refRejections struct {
	limit   int
	entries []Rejection
}

func (r *refRejections) record(now time.Time, topic string, from peer.ID, lbl, reason string) {
	var kept []Rejection
	e := Rejection{Peer: from, Topic: topic, Label: lbl, Reason: reason, First: now}
	for _, old := range r.entries {
		if old.Peer == from && old.Topic == topic && old.Label == lbl {
			e.Count, e.First = old.Count, old.First
			continue
		}
		kept = append(kept, old)
	}
	e.Count++
	e.Last = now
	kept = append(kept, e)
	if len(kept) > r.limit {
		kept = kept[len(kept)-r.limit:]
	}
	r.entries = kept
}

func TestRejectionsMatchReference(t *testing.T) {
	const seed = 11
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	ids := testIDs(t, 5)
	topics := []string{"heads", "offers", "acks"}
	errs := []error{ErrTooLarge, ErrRateLimited, errSentinel, fmt.Errorf("stale: %w", errSentinel)}
	for round := range 30 {
		limit := rng.IntN(8)
		r, err := newRejections(limit, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		ref := &refRejections{limit: limit}
		now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		counts := make(map[string]uint64)
		for range 300 {
			now = now.Add(time.Second)
			from, topic, e := ids[rng.IntN(len(ids))], topics[rng.IntN(len(topics))], errs[rng.IntN(len(errs))]
			r.record(now, topic, from, "", e)
			ref.record(now, topic, from, label(e), e.Error())
			counts[label(e)]++
		}
		got, want := r.list(), ref.entries
		if len(got) == 0 && len(want) == 0 {
			got, want = nil, nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d (limit %d):\n got %+v\nwant %+v", round, limit, got, want)
		}
		if !reflect.DeepEqual(r.counts(), counts) {
			t.Fatalf("round %d: counts %v, want %v", round, r.counts(), counts)
		}
	}
}

func TestRejectionsBoundLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := newRejections(4, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range maxLabels + 10 {
		r.record(now, "t", "", "", fmt.Errorf("reason %d", i))
	}
	c := r.counts()
	if len(c) != maxLabels+1 || c[otherLabel] != 10 {
		t.Errorf("counts has %d labels, other=%d; want %d and 10", len(c), c[otherLabel], maxLabels+1)
	}
	if got := counterSeries(t, reg); len(got) != maxLabels+1 {
		t.Errorf("prometheus series = %d, want %d", len(got), maxLabels+1)
	}
	// A second node on the same registry shares the counter.
	r2, err := newRejections(4, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatalf("second registration: %v", err)
	}
	r2.record(now, "t", "", "", fmt.Errorf("reason 0"))
	if v := counterSeries(t, reg)["t/reason 0"]; v != 2 {
		t.Errorf("shared counter = %v, want 2", v)
	}
}

// counterSeries gathers pinfold_p2p_pubsub_rejections_total from reg,
// keyed "topic/reason".
func counterSeries(t testing.TB, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, f := range families {
		if f.GetName() != "pinfold_p2p_pubsub_rejections_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var topic, reason string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "topic":
					topic = l.GetValue()
				case "reason":
					reason = l.GetValue()
				}
			}
			out[topic+"/"+reason] = m.GetCounter().GetValue()
		}
	}
	return out
}

func TestTracerRecordsOnlyPubsubDrops(t *testing.T) {
	r, _ := newRejections(8, slog.New(slog.DiscardHandler), nil)
	tr := tracer{rej: r, now: time.Now}
	id := testIDs(t, 1)[0]
	msg := testMessage("heads", id, id, []byte("x"))
	for _, reason := range []string{pubsub.RejectValidationFailed, pubsub.RejectValidationIgnored, pubsub.RejectSelfOrigin} {
		tr.RejectMessage(msg, reason)
	}
	if got := r.list(); len(got) != 0 {
		t.Fatalf("tracer recorded our own validator results: %v", got)
	}
	tr.RejectMessage(msg, pubsub.RejectInvalidSignature)
	tr.UndeliverableMessage(msg)
	got := r.list()
	if len(got) != 2 || got[0].Label != "pubsub: invalid signature" || got[0].Topic != "heads" || got[0].Peer != id {
		t.Errorf("tracer recorded %+v", got)
	}
}

func testMessage(topic string, from, author peer.ID, data []byte) *pubsub.Message {
	return &pubsub.Message{
		Message:      &pb.Message{Data: data, Topic: &topic, From: []byte(author)},
		ReceivedFrom: from,
	}
}

// TestGate checks the verdicts of the gate with a fake clock: size first
// (reject), then the validator (reject on error, panics included; ignore
// on an Ignore error). Rejections blame the sender, ignores do not.
func TestGate(t *testing.T) {
	ids := testIDs(t, 3)
	self, a, b := ids[0], ids[1], ids[2]
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	r, _ := newRejections(16, slog.New(slog.DiscardHandler), nil)
	in := newInbox(r, clock, self)
	calls := 0
	g := &gate{
		topic: "t", rej: r, in: in,
		limits: topicLimits{maxSize: 10, perSec: 1, burst: 3},
		now:    clock,
		self:   self,
		validate: func(_ context.Context, msg *pubsub.Message) error {
			calls++
			switch string(msg.Data) {
			case "bad":
				return fmt.Errorf("check: %w", errSentinel)
			case "behind":
				return Ignore(fmt.Errorf("check: %w", ErrClosed))
			case "panic":
				panic("boom")
			}
			return nil
		},
	}
	check := func(from peer.ID, data string) pubsub.ValidationResult {
		return g.check(context.Background(), from, testMessage("t", from, from, []byte(data)))
	}
	steps := []struct {
		from peer.ID
		data string
		want pubsub.ValidationResult
	}{
		{a, "ok", pubsub.ValidationAccept},
		{a, "bad", pubsub.ValidationReject},
		{a, "too large data", pubsub.ValidationReject},
		{b, "behind", pubsub.ValidationIgnore},
		{b, "panic", pubsub.ValidationReject},
		{self, "ok", pubsub.ValidationAccept},
		{self, "behind", pubsub.ValidationIgnore}, // not counted: we publish it
	}
	for i, s := range steps {
		if got := check(s.from, s.data); got != s.want {
			t.Fatalf("step %d (%s %q) = %v, want %v", i, s.from, s.data, got, s.want)
		}
	}
	if calls != 6 {
		t.Errorf("validator called %d times, want 6 (not for oversized)", calls)
	}
	want := map[string]uint64{
		"trust: signature invalid": 1, "p2p: message too large": 1,
		"p2p: node closed": 1, "p2p: validator panicked": 1,
	}
	if got := r.counts(); !reflect.DeepEqual(got, want) {
		t.Errorf("counts = %v, want %v", got, want)
	}
	in.mu.Lock()
	ba, bb := in.blameLocked(a, now), in.blameLocked(b, now)
	in.mu.Unlock()
	if ba != 2 || bb != 1 {
		t.Errorf("blame of a %v, b %v; want 2 (two rejections), 1 (one rejection, one ignore)", ba, bb)
	}
	if s := in.score(a); s != 0 {
		t.Errorf("a's score %v: a little blame is allowed", s)
	}
}

// TestInbox checks the budget applied before gossipsub queues messages:
// per peer and topic, ungated topics untouched, blame decaying, and a
// peer over the graylist threshold dropped whole.
func TestInbox(t *testing.T) {
	ids := testIDs(t, 3)
	self, a, b := ids[0], ids[1], ids[2]
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r, _ := newRejections(16, slog.New(slog.DiscardHandler), nil)
	in := newInbox(r, func() time.Time { return now }, self)
	in.setLimits("t", topicLimits{maxSize: 10, perSec: 1, burst: 3})
	in.setLimits("u", topicLimits{maxSize: 10, perSec: 1, burst: 3})
	rpc := func(from peer.ID, topics ...string) int {
		var msgs []*pb.Message
		for _, topic := range topics {
			msgs = append(msgs, &pb.Message{Topic: &topic, From: []byte(from)})
		}
		r := &pubsub.RPC{RPC: pb.RPC{Publish: msgs}}
		if err := in.inspect(from, r); err != nil {
			t.Fatal(err)
		}
		return len(r.Publish)
	}
	if got := rpc(a, "t", "t", "t", "t", "t", "u", "other"); got != 5 {
		t.Fatalf("kept %d of a's 7, want 5 (3 on t, 1 on u, 1 ungated)", got)
	}
	if got := rpc(b, "t", "t"); got != 2 {
		t.Fatalf("kept %d of b's 2: peers have their own buckets", got)
	}
	blameOf := func(p peer.ID) float64 {
		in.mu.Lock()
		defer in.mu.Unlock()
		return in.blameLocked(p, now)
	}
	if got := blameOf(a); math.Abs(got-2*overBudgetBlame) > 1e-9 {
		t.Fatalf("a's blame %v, want %v (two over budget)", got, 2*overBudgetBlame)
	}
	now = now.Add(blameHalfLife)
	if got := blameOf(a); math.Abs(got-overBudgetBlame) > 1e-9 {
		t.Fatalf("a's blame after one half-life %v, want %v", got, overBudgetBlame)
	}
	in.penalize(a, blameAllowance)
	if got := in.score(a); got >= 0 || got < -1 {
		t.Fatalf("a's score past the allowance %v, want just below 0", got)
	}
	in.penalize(a, -graylistScore)
	if got := rpc(a, "u"); got != 0 {
		t.Fatalf("graylisted a: kept %d", got)
	}
	if got := r.counts(); got["p2p: peer rate limited"] != 2 || got["p2p: peer graylisted"] != 1 {
		t.Errorf("counts = %v", got)
	}
	in.dropLimits("t")
	if got := rpc(b, "t", "t", "t", "t"); got != 4 {
		t.Errorf("topic t without a gate: kept %d of 4", got)
	}
}

func TestInboxForgetsFullBuckets(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r, _ := newRejections(0, slog.New(slog.DiscardHandler), nil)
	in := newInbox(r, func() time.Time { return now }, "")
	l := topicLimits{maxSize: 10, perSec: 1, burst: 2}
	for i := range 3 * maxBuckets {
		in.allowLocked(peer.ID(fmt.Sprintf("peer-%d", i)), "t", l, now)
		now = now.Add(time.Second) // every older bucket refills
	}
	if len(in.buckets) > maxBuckets {
		t.Errorf("inbox holds %d buckets, want <= %d", len(in.buckets), maxBuckets)
	}
	for i := range 3 * maxBlamed {
		in.penalize(peer.ID(fmt.Sprintf("peer-%d", i)), 1)
		now = now.Add(10 * blameHalfLife)
	}
	if len(in.blame) > maxBlamed {
		t.Errorf("inbox blames %d peers, want <= %d", len(in.blame), maxBlamed)
	}
}

// TestDroppedRPCsCounted: gossipsub's DropRPC (a peer's send queue full)
// reaches DroppedRPCs and pinfold_p2p_pubsub_dropped_rpcs_total, which
// nodes on one registry share.
func TestDroppedRPCsCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := newRejections(4, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := newRejections(4, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatalf("second registration: %v", err)
	}
	tracer{rej: r}.DropRPC(&pubsub.RPC{}, "")
	tracer{rej: r}.DropRPC(&pubsub.RPC{}, "")
	tracer{rej: r2}.DropRPC(&pubsub.RPC{}, "")
	if r.dropped.Load() != 2 || r2.dropped.Load() != 1 {
		t.Fatalf("dropped = %d and %d, want 2 and 1", r.dropped.Load(), r2.dropped.Load())
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64
	for _, f := range families {
		if f.GetName() == "pinfold_p2p_pubsub_dropped_rpcs_total" {
			got = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if got != 3 {
		t.Fatalf("pinfold_p2p_pubsub_dropped_rpcs_total = %v, want 3", got)
	}
}
