package headsync

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/trust"
)

// Rejection is one refused candidate head.
type Rejection struct {
	Time   time.Time `json:"time"`
	Source Source    `json:"source"`
	Peer   string    `json:"peer,omitempty"`
	Reason string    `json:"reason"` // the class counted: the innermost error, e.g. "trust: seq not newer"
	Error  string    `json:"error"`
}

type rejections struct {
	mu     sync.Mutex
	max    int
	recent []Rejection
	counts map[string]uint64
}

// Reason classifies err for counting: the innermost error of its %w
// chain, normally a package sentinel such as "trust: signer not trusted".
// It is the same class the p2p package counts topic rejections by, so the
// two add up in status output.
func Reason(err error) string {
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			break
		}
		err = inner
	}
	s := err.Error()
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

func (s *Sync) reject(src Source, from peer.ID, err error) {
	r := Rejection{Time: s.now(), Source: src, Reason: Reason(err), Error: err.Error()}
	if from != "" {
		r.Peer = from.String()
	}
	level := slog.LevelWarn
	if errors.Is(err, trust.ErrStaleSeq) {
		// A peer behind us relays the head it has: usual at every head
		// (200 such lines a head on a curator of 200 followers), and
		// harmless. Counted like the others; logged at debug.
		level = slog.LevelDebug
	}
	s.log.Log(context.Background(), level, "rejected head", "source", src, "peer", r.Peer, "reason", r.Reason, "err", err)
	s.rej.mu.Lock()
	defer s.rej.mu.Unlock()
	if s.rej.counts == nil {
		s.rej.counts = map[string]uint64{}
	}
	s.rej.counts[r.Reason]++
	s.rej.recent = append(s.rej.recent, r)
	if len(s.rej.recent) > s.rej.max {
		s.rej.recent = s.rej.recent[len(s.rej.recent)-s.rej.max:]
	}
}

// Rejections returns the recent rejections, oldest first, and the count of
// every rejection reason since start.
func (s *Sync) Rejections() ([]Rejection, map[string]uint64) {
	s.rej.mu.Lock()
	defer s.rej.mu.Unlock()
	counts := make(map[string]uint64, len(s.rej.counts))
	for k, v := range s.rej.counts {
		counts[k] = v
	}
	return append([]Rejection(nil), s.rej.recent...), counts
}

// TopicRejections returns the recent rejections as p2p rejection entries
// (topic "verify/<source>", peer, reason), so status displays group them
// with the topics' own (p2p.GroupRejections).
func (s *Sync) TopicRejections() []p2p.Rejection {
	recent, _ := s.Rejections()
	out := make([]p2p.Rejection, 0, len(recent))
	for _, r := range recent {
		id, _ := peer.Decode(r.Peer)
		out = append(out, p2p.Rejection{Peer: id, Topic: "verify/" + string(r.Source), Label: r.Reason, Reason: r.Error,
			Count: 1, First: r.Time, Last: r.Time})
	}
	return out
}
