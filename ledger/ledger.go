package ledger

import (
	"bytes"
	"slices"
	"strings"
)

// ACK states, as in dag.Ack.
const (
	Stored   = "stored"
	Released = "released"
)

// Audit results, as in dag.Audit.
const (
	Pass = "pass"
	Fail = "fail"
)

// Ack is the part of a signed ACK the ledger keeps.
type Ack struct {
	Peer   string // member peer ID, binary
	Shard  int64
	State  string // Stored or Released
	Digest []byte
	Bytes  int64
	Seq    int64 // seq of the head the ACK names
	Time   int64 // member's clock: orders only the member's own ACKs under one head
}

// Audit is the part of a signed audit result the ledger keeps.
type Audit struct {
	Auditor string // binary peer ID of the signing curator
	Holder  string // member peer ID, binary
	Shard   int64
	Digest  []byte
	Result  string // Pass or Fail
	Reason  string
	Time    int64 // auditor's clock, unix ms
}

// Entry is one log entry: exactly one of Ack and Audit is set.
type Entry struct {
	Ack   *Ack
	Audit *Audit
}

// Holding is what the chain records of one member and one shard.
type Holding struct {
	Peer  string `json:"peer"`
	Shard int64  `json:"shard"`
	// The newest recorded ACK.
	State    string `json:"state"`
	Digest   []byte `json:"digest"`
	Bytes    int64  `json:"bytes"`
	AckSeq   int64  `json:"ack_seq"`  // seq of the head the ACK names
	AckTime  int64  `json:"ack_time"` // member's clock
	Recorded int64  `json:"recorded"` // seq of the head whose log holds it
	// Since is the seq of the head that first recorded the present
	// commitment (same state and digest); later heartbeats keep it.
	Since int64 `json:"since"`
	// The newest audit of the present commitment's content.
	Audited     int64  `json:"audited"` // seq of the head recording it; 0: none
	Result      string `json:"result,omitempty"`
	Reason      string `json:"reason,omitempty"`
	AuditTime   int64  `json:"audit_time,omitempty"`   // auditor's clock
	LastPass    int64  `json:"last_pass,omitempty"`    // seq recording the newest pass of this content; 0: none
	PassTime    int64  `json:"pass_time,omitempty"`    // auditor's clock of that pass
	AuditDigest []byte `json:"audit_digest,omitempty"` // content the newest audit checked
}

// Proven reports whether h is a proven copy of digest: a stored ACK of
// that content recorded in a head, and, recorded in a later head, a passed
// audit of that content that no later audit contradicts.
func (h *Holding) Proven(digest []byte) bool {
	return h != nil && h.State == Stored && bytes.Equal(h.Digest, digest) &&
		h.Result == Pass && bytes.Equal(h.AuditDigest, digest) && h.Audited > h.Since
}

// Member is a member's audit record, derived from the chain.
type Member struct {
	Peer   string `json:"peer"`
	Passes int64  `json:"passes"`
	Fails  int64  `json:"fails"`
	// Streak is the number of failed audits since its last pass.
	Streak     int64  `json:"streak"`
	LastPass   int64  `json:"last_pass,omitempty"` // seq of the head recording it
	LastFail   int64  `json:"last_fail,omitempty"`
	FailReason string `json:"fail_reason,omitempty"`
	FailShard  int64  `json:"fail_shard,omitempty"`
	FailTime   int64  `json:"fail_time,omitempty"` // auditor's clock
}

type key struct {
	peer  string
	shard int64
}

// Ledger is the state derived from every head applied so far. Not safe
// for concurrent use; the owner serialises access.
type Ledger struct {
	applied  int64 // seq of the newest head applied; -1 before any
	holdings map[key]*Holding
	members  map[string]*Member
}

// New returns an empty ledger.
func New() *Ledger {
	return &Ledger{applied: -1, holdings: map[key]*Holding{}, members: map[string]*Member{}}
}

// Applied is the seq of the newest head applied, -1 before any.
func (l *Ledger) Applied() int64 { return l.applied }

// Apply records the log of the head at seq. Heads are applied in chain
// order; a head at or below the newest applied seq is ignored (it was
// applied, or lies on a branch the chain left) and Apply reports false.
func (l *Ledger) Apply(seq int64, entries []Entry) bool {
	if seq <= l.applied {
		return false
	}
	l.applied = seq
	for _, e := range entries {
		switch {
		case e.Ack != nil:
			l.applyAck(seq, *e.Ack)
		case e.Audit != nil:
			l.applyAudit(seq, *e.Audit)
		}
	}
	return true
}

func (l *Ledger) applyAck(seq int64, a Ack) {
	k := key{a.Peer, a.Shard}
	h := l.holdings[k]
	if h == nil {
		h = &Holding{Peer: a.Peer, Shard: a.Shard, AckSeq: -1}
		l.holdings[k] = h
	}
	if a.Seq < h.AckSeq || (a.Seq == h.AckSeq && a.Time <= h.AckTime) {
		return // not newer than what the chain holds: a replay
	}
	same := h.State == a.State && bytes.Equal(h.Digest, a.Digest)
	h.State, h.Digest, h.Bytes, h.AckSeq, h.AckTime, h.Recorded = a.State, slices.Clone(a.Digest), a.Bytes, a.Seq, a.Time, seq
	if !same {
		h.Since = seq
	}
}

func (l *Ledger) applyAudit(seq int64, a Audit) {
	m := l.members[a.Holder]
	if m == nil {
		m = &Member{Peer: a.Holder}
		l.members[a.Holder] = m
	}
	switch a.Result {
	case Pass:
		m.Passes++
		m.Streak = 0
		m.LastPass = seq
	case Fail:
		m.Fails++
		m.Streak++
		m.LastFail, m.FailReason, m.FailShard, m.FailTime = seq, a.Reason, a.Shard, a.Time
	default:
		return
	}
	h := l.holdings[key{a.Holder, a.Shard}]
	if h == nil {
		return // an audit of content it never ACKed: counts for the member only
	}
	if h.Audited == seq && h.Result == Fail && a.Result == Pass && bytes.Equal(h.AuditDigest, a.Digest) {
		return // two results in one head: a failure stands
	}
	h.Audited, h.Result, h.Reason, h.AuditTime, h.AuditDigest = seq, a.Result, a.Reason, a.Time, slices.Clone(a.Digest)
	if a.Result == Pass && bytes.Equal(a.Digest, h.Digest) {
		h.LastPass, h.PassTime = seq, a.Time
	}
}

// Holding returns the record of peer and shard, or nil.
func (l *Ledger) Holding(peer string, shard int64) *Holding {
	if h := l.holdings[key{peer, shard}]; h != nil {
		c := *h
		return &c
	}
	return nil
}

// Member returns peer's audit record (zero when none is recorded).
func (l *Ledger) Member(peer string) Member {
	if m := l.members[peer]; m != nil {
		return *m
	}
	return Member{Peer: peer}
}

// Proven reports whether peer holds a proven copy of shard's content
// digest (see Holding.Proven).
func (l *Ledger) Proven(peer string, shard int64, digest []byte) bool {
	return l.holdings[key{peer, shard}].Proven(digest)
}

// Each calls f with a copy of every holding, in no order: the cheap walk
// for callers that do not need Snapshot's sorted copy.
func (l *Ledger) Each(f func(Holding)) {
	for _, h := range l.holdings {
		f(*h)
	}
}

// Holdings returns every holding of shard, sorted by peer.
func (l *Ledger) Holdings(shard int64) []Holding {
	var out []Holding
	for k, h := range l.holdings {
		if k.shard == shard {
			out = append(out, *h)
		}
	}
	slices.SortFunc(out, func(a, b Holding) int { return strings.Compare(a.Peer, b.Peer) })
	return out
}

// Snapshot is the whole ledger in a serialisable form.
type Snapshot struct {
	Applied  int64     `json:"applied"`
	Holdings []Holding `json:"holdings"`
	Members  []Member  `json:"members"`
}

// Snapshot returns the ledger's state, sorted so equal ledgers give equal
// snapshots.
func (l *Ledger) Snapshot() Snapshot {
	s := Snapshot{Applied: l.applied}
	for _, h := range l.holdings {
		s.Holdings = append(s.Holdings, *h)
	}
	slices.SortFunc(s.Holdings, func(a, b Holding) int {
		if c := strings.Compare(a.Peer, b.Peer); c != 0 {
			return c
		}
		return int(min(max(a.Shard-b.Shard, -1), 1))
	})
	for _, m := range l.members {
		s.Members = append(s.Members, *m)
	}
	slices.SortFunc(s.Members, func(a, b Member) int { return strings.Compare(a.Peer, b.Peer) })
	return s
}

// Restore returns the ledger a snapshot was taken of.
func Restore(s Snapshot) *Ledger {
	l := New()
	l.applied = s.Applied
	for _, h := range s.Holdings {
		h := h
		l.holdings[key{h.Peer, h.Shard}] = &h
	}
	for _, m := range s.Members {
		m := m
		l.members[m.Peer] = &m
	}
	return l
}
