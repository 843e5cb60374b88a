package curator

import (
	"testing"

	"github.com/pinfold/pinfold/ledger"
)

func TestStanding(t *testing.T) {
	p := AuditPolicy{FailAfter: 2, RemoveAfter: 4, ProbationStart: 1 << 30}
	tests := []struct {
		name     string
		pledge   int64
		rec      ledger.Member
		capacity int64
		standing string
	}{
		{"new member, small pledge", 1 << 20, ledger.Member{}, 1 << 20, StandingGood},
		{"new member, large pledge", 1 << 50, ledger.Member{}, 1 << 30, StandingProbation},
		{"three passes", 1 << 50, ledger.Member{Passes: 3}, 8 << 30, StandingProbation},
		{"enough passes", 1 << 34, ledger.Member{Passes: 4}, 1 << 34, StandingGood},
		{"absurd pledge, many passes", 1<<63 - 1, ledger.Member{Passes: 70}, 1<<63 - 1, StandingGood},
		{"one failure is not failing", 1 << 20, ledger.Member{Passes: 9, Streak: 1}, 1 << 20, StandingGood},
		{"failing", 1 << 20, ledger.Member{Passes: 9, Streak: 2}, 0, StandingFailing},
		{"expelled", 1 << 20, ledger.Member{Streak: 4}, 0, StandingExpelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s, why := p.Standing(tt.pledge, tt.rec)
			if c != tt.capacity || s != tt.standing {
				t.Fatalf("Standing = %d %s (%s), want %d %s", c, s, why, tt.capacity, tt.standing)
			}
			if (s == StandingGood) != (why == "") {
				t.Fatalf("standing %s with reason %q", s, why)
			}
		})
	}
}

func TestProbationLimitNoOverflow(t *testing.T) {
	for passes := int64(0); passes < 80; passes++ {
		for _, start := range []int64{1, 1 << 20, 1 << 30, 1<<62 + 1} {
			l := probationLimit(start, passes)
			if l < start {
				t.Fatalf("probationLimit(%d, %d) = %d overflowed", start, passes, l)
			}
		}
	}
}
