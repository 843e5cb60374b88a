package headsync

import (
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/publish"
	"github.com/pinfold/pinfold/trust"
)

// Rejection is one refused candidate head.
type Rejection struct {
	Time   time.Time `json:"time"`
	Source Source    `json:"source"`
	Peer   string    `json:"peer,omitempty"`
	Reason string    `json:"reason"` // a short class: bad-signature, untrusted-signer, stale-seq, ...
	Error  string    `json:"error"`
}

type rejections struct {
	mu     sync.Mutex
	max    int
	recent []Rejection
	counts map[string]uint64
}

// reasons maps sentinel errors to the short classes counted in status.
var reasons = []struct {
	err  error
	name string
}{
	{trust.ErrFork, "fork"},
	{trust.ErrBadSignature, "bad-signature"},
	{trust.ErrUntrustedSigner, "untrusted-signer"},
	{trust.ErrStaleSeq, "stale-seq"},
	{trust.ErrWrongCluster, "wrong-cluster"},
	{trust.ErrFutureTime, "future-time"},
	{trust.ErrPastTime, "past-time"},
	{trust.ErrParentMismatch, "parent-mismatch"},
	{trust.ErrNotDescendant, "not-descendant"},
	{trust.ErrChainTooLong, "chain-too-long"},
	{dag.ErrTooLarge, "oversize"},
	{dag.ErrUnknownVersion, "unknown-version"},
	{dag.ErrMalformed, "malformed"},
	{ErrMalformed, "malformed"},
	{publish.ErrExpired, "record-expired"},
	{publish.ErrSeqMismatch, "record-mismatch"},
	{publish.ErrHeadMismatch, "record-mismatch"},
	{publish.ErrBadSignature, "record-bad-signature"},
	{publish.ErrTooLarge, "oversize"},
	{publish.ErrMalformed, "record-malformed"},
}

// Reason classifies err for counting.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "unavailable"
}

func (s *Sync) reject(src Source, from peer.ID, err error) {
	r := Rejection{Time: s.now(), Source: src, Reason: Reason(err), Error: err.Error()}
	if from != "" {
		r.Peer = from.String()
	}
	s.log.Warn("rejected head", "source", src, "peer", r.Peer, "reason", r.Reason, "err", err)
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
