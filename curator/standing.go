package curator

import (
	"fmt"
	"math/bits"

	"github.com/pinfold/pinfold/ledger"
)

// Standings of a member, from its audit record in the chain.
const (
	StandingGood      = "good"      // capacity up to its pledge
	StandingProbation = "probation" // passed too few audits for its whole pledge
	StandingFailing   = "failing"   // failed audits in a row: assigned nothing
	StandingExpelled  = "expelled"  // failed too many in a row: out of the allocation
)

// AuditPolicy is what audits cost or earn a member.
type AuditPolicy struct {
	FailAfter      int64 // failures in a row that make a member failing
	RemoveAfter    int64 // failures in a row that take it out of the allocation
	ProbationStart int64 // capacity before any passed audit; doubled by each pass
}

// Standing decides a member's standing and the capacity the next head
// signs for it, from its pledge and its audit record. A pure function.
func (p AuditPolicy) Standing(pledge int64, r ledger.Member) (capacity int64, standing, why string) {
	switch {
	case p.RemoveAfter > 0 && r.Streak >= p.RemoveAfter:
		return 0, StandingExpelled, fmt.Sprintf("%d audits failed in a row; last: shard %d: %s", r.Streak, r.FailShard, r.FailReason)
	case p.FailAfter > 0 && r.Streak >= p.FailAfter:
		return 0, StandingFailing, fmt.Sprintf("%d audits failed in a row; last: shard %d: %s", r.Streak, r.FailShard, r.FailReason)
	}
	limit := probationLimit(p.ProbationStart, r.Passes)
	if pledge > limit {
		return limit, StandingProbation, fmt.Sprintf("%d audits passed: capacity %d of the %d pledged", r.Passes, limit, pledge)
	}
	return pledge, StandingGood, ""
}

// probationLimit is start doubled passes times, without overflow.
func probationLimit(start, passes int64) int64 {
	if start <= 0 {
		return 1<<63 - 1
	}
	if passes >= int64(bits.LeadingZeros64(uint64(start)))-1 {
		return 1<<63 - 1
	}
	return start << passes
}
