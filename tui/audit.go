package tui

// What the audits make of a copy, in words shared by the live dashboards,
// their plain form and `follow <cluster> status`: a copy counts as held
// only once a passed audit proves it, so every view says which copies are
// proven, which are only ACKed, and which failed their audit.

import (
	"fmt"
	"time"

	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/ledger"
)

// tone is how a piece of text is styled on a terminal.
type tone int

const (
	plainTone tone = iota
	goodTone
	warnTone
)

func (t tone) render(s string) string {
	switch t {
	case goodTone:
		return goodStyle.Render(s)
	case warnTone:
		return warnStyle.Render(s)
	}
	return s
}

// Proof of a follower's own copy, from the shard's row. The order is the
// order a copy goes through; a failure sorts first, it needs attention.
const (
	proofFailed   = iota // the newest audit of the copy failed
	proofNone            // stored, not ACKed yet
	proofUnproven        // ACKed, no passed audit since
	proofProven          // a signed head records a passed audit since the ACK
)

// proof classifies a stored shard row.
func proof(r follower.ShardStatus) int {
	switch {
	case r.Proven:
		return proofProven
	case r.Audit == ledger.Fail:
		return proofFailed
	case r.AckedSeq >= 0:
		return proofUnproven
	}
	return proofNone
}

// storedText is the state of a stored shard row: proven (with the age of
// the audit), ACKed and not yet proven, or failed with the reason.
func storedText(r follower.ShardStatus, now time.Time) (string, tone) {
	acked := fmt.Sprintf("ACKed at seq %d", r.AckedSeq)
	switch proof(r) {
	case proofProven:
		s := "proven"
		if !r.AuditedAt.IsZero() {
			s += " " + age(now, r.AuditedAt) + " ago"
		}
		return s + " · " + acked, goodTone
	case proofFailed:
		s := "audit failed"
		if !r.AuditedAt.IsZero() {
			s += " " + age(now, r.AuditedAt) + " ago"
		}
		if r.AuditReason != "" {
			s += ": " + r.AuditReason
		}
		return s, warnTone
	case proofUnproven:
		if !r.Recorded {
			return acked + ", not yet recorded" + storedAgo(r.Since, now), plainTone
		}
		return acked + ", not yet proven" + storedAgo(r.Since, now), plainTone
	}
	return "stored" + forText(r.Since, now), plainTone
}

// forText is " for <age>" since t, or "" for an unknown time.
func forText(since, now time.Time) string {
	if since.IsZero() {
		return ""
	}
	return " for " + age(now, since)
}

// storedAgo is " · stored <age> ago", or "" for an unknown time.
func storedAgo(since, now time.Time) string {
	if since.IsZero() {
		return ""
	}
	return " · stored " + age(now, since) + " ago"
}

// errorText is a row's last error with its age ("" for none).
func errorText(msg string, at, now time.Time) string {
	if msg == "" {
		return ""
	}
	if at.IsZero() {
		return "! " + msg
	}
	return "! " + msg + " (" + age(now, at) + " ago)"
}

// shardCounts counts a follower's shards: assigned (not releasing),
// stored, proven (what counts) with their bytes, and failed (stored, the
// newest audit failed).
type shardCounts struct {
	assigned, stored, proven, failed int
	provenBytes                      int64
}

func countShards(s follower.Status) shardCounts {
	var c shardCounts
	for _, r := range s.Shards {
		if r.State != follower.ShardReleasing {
			c.assigned++
		}
		if r.State != follower.ShardStored {
			continue
		}
		c.stored++
		switch proof(r) {
		case proofProven:
			c.proven++
			c.provenBytes += r.Bytes
		case proofFailed:
			c.failed++
		}
	}
	return c
}

// String is the counts in a line; the bytes assigned and stored are on
// the storage line.
func (c shardCounts) String() string {
	out := fmt.Sprintf("%d assigned, %d stored, %d proven (%s)", c.assigned, c.stored, c.proven, ibytes(c.provenBytes))
	if c.failed > 0 {
		out += fmt.Sprintf(", %d failed %s newest audit", c.failed, plural(c.failed, "its", "their"))
	}
	return out
}

// ShardSummary sums up a follower's shards in one line: how many are
// assigned and stored, with their bytes, how many an audit proved (what
// counts), and how many failed their newest audit.
func ShardSummary(s follower.Status) string {
	c := countShards(s)
	out := fmt.Sprintf("%d assigned (%s), %d stored (%s), %d proven (%s)",
		c.assigned, ibytes(s.Assigned), c.stored, ibytes(s.Stored), c.proven, ibytes(c.provenBytes))
	if c.failed > 0 {
		out += fmt.Sprintf(", %d failed %s newest audit", c.failed, plural(c.failed, "its", "their"))
	}
	return out
}

// AuditSummary is a member's audit record in one line: passes, failures,
// how many since its last pass, and the newest failure (when, which
// shard, why). now dates the failure, which carries the auditor's clock.
func AuditSummary(a ledger.Member, now time.Time) string {
	if a.Passes == 0 && a.Fails == 0 {
		return "none yet"
	}
	s := fmt.Sprintf("%d passed, %d failed", a.Passes, a.Fails)
	if a.Fails == 0 {
		return s
	}
	switch {
	case a.Passes == 0:
		s += " (no pass yet)"
	case a.Streak == 0:
		s += " (none since the last pass)"
	default:
		s += fmt.Sprintf(" (%d since the last pass)", a.Streak)
	}
	s += "; last failure"
	if a.FailTime != 0 {
		s += " " + age(now, time.UnixMilli(a.FailTime)) + " ago"
	}
	s += fmt.Sprintf(", shard %d", a.FailShard)
	if a.FailReason != "" {
		s += ": " + a.FailReason
	}
	return s
}

// auditTone is the tone of a member's audit record: a warning while its
// newest audits failed, good once it passed some and failed none since.
func auditTone(a ledger.Member) tone {
	switch {
	case a.Streak > 0:
		return warnTone
	case a.Passes > 0:
		return goodTone
	}
	return plainTone
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// copies counts the copies the curator shows as claimed but not held:
// ACKed (a current stored ACK) and not proven, apart from those whose
// newest audit failed.
type copies struct {
	unproven, failed int
}

// Claims of a holder's copy that do not count.
const (
	notClaimed = iota // proven, or not a current stored ACK
	claimUnproven
	claimFailed
)

func claimOf(h curator.HolderInfo) int {
	switch {
	case h.Proven || h.State != ledger.Stored || !h.Current:
		return notClaimed
	case h.Audit == ledger.Fail:
		return claimFailed
	}
	return claimUnproven
}

func claimed(ss []curator.ShardInfo) copies {
	var c copies
	for _, s := range ss {
		for _, h := range s.Holders {
			switch claimOf(h) {
			case claimUnproven:
				c.unproven++
			case claimFailed:
				c.failed++
			}
		}
	}
	return c
}

// memberAudits is a member's audit counts in a table cell: passes and
// failures, in thousands from 1000 on.
func memberAudits(a ledger.Member) string {
	return count(a.Passes) + "✓ " + count(a.Fails) + "✗"
}

func count(n int64) string {
	if n < 1000 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%dk", n/1000)
}

// memberRank orders members by the STATE cell: the standings that need
// attention first, then by liveness.
var memberRank = map[string]int{
	curator.StandingExpelled: 0, curator.StandingFailing: 1, curator.StandingProbation: 2,
	curator.StateActive: 3, curator.StatePending: 4, curator.StateOffline: 5, curator.StateRemoved: 6,
}

// memberState is the STATE cell of a member, its tone and its sort rank:
// its liveness while its standing is good, else its standing first
// (failing, expelled, probation) with why; and why its newest offer was
// refused.
func memberState(ml curator.MemberLoad) (string, tone, int) {
	var s string
	t := plainTone
	rank := memberRank[ml.State]
	switch {
	case ml.State == curator.StatePending || ml.State == curator.StateRemoved:
		// Not in the allocation: its standing has no effect yet.
		s, t = ml.State, warnTone
	case ml.Standing != "" && ml.Standing != curator.StandingGood:
		s, t, rank = ml.Standing, warnTone, memberRank[ml.Standing]
		if ml.State != curator.StateActive {
			s += " (" + ml.State + ")"
		}
		if ml.StandingWhy != "" {
			s += ": " + ml.StandingWhy
		}
	default:
		s = ml.State
		if ml.State != curator.StateActive {
			t = warnTone
		}
	}
	if ml.Refused != "" {
		s += "; offer refused: " + ml.Refused
		t = warnTone
	}
	return s, t, rank
}
