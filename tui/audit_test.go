package tui

import (
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/ledger"
)

func TestStoredText(t *testing.T) {
	base := follower.ShardStatus{ID: 4, State: follower.ShardStored, AckedSeq: 42}
	for _, tc := range []struct {
		name string
		edit func(r *follower.ShardStatus)
		want string
		tone tone
	}{
		{"not ACKed", func(r *follower.ShardStatus) { r.AckedSeq = -1 }, "stored", plainTone},
		{"ACK sent, no head records it", func(r *follower.ShardStatus) {}, "ACKed at seq 42, not yet recorded", plainTone},
		{"recorded, not audited", func(r *follower.ShardStatus) { r.Recorded = true }, "ACKed at seq 42, not yet proven", plainTone},
		{"passed before the ACK, not proven", func(r *follower.ShardStatus) {
			r.Recorded, r.Audit, r.AuditedAt = true, ledger.Pass, now.Add(-time.Hour)
		}, "ACKed at seq 42, not yet proven", plainTone},
		{"proven", func(r *follower.ShardStatus) {
			r.Recorded, r.Proven, r.Audit, r.AuditedAt = true, true, ledger.Pass, now.Add(-3*time.Minute)
		}, "proven 3m ago · ACKed at seq 42", goodTone},
		{"failed", func(r *follower.ShardStatus) {
			r.Recorded, r.Audit, r.AuditedAt, r.AuditReason = true, ledger.Fail, now.Add(-2*time.Hour), "no answer within 30s"
		}, "audit failed 2h ago: no answer within 30s", warnTone},
		{"failed, no time", func(r *follower.ShardStatus) { r.Audit = ledger.Fail }, "audit failed", warnTone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.edit(&r)
			got, tn := storedText(r, now)
			if got != tc.want || tn != tc.tone {
				t.Fatalf("storedText = %q (tone %d), want %q (tone %d)", got, tn, tc.want, tc.tone)
			}
		})
	}
}

func TestAuditSummary(t *testing.T) {
	failed := now.Add(-15 * time.Minute).UnixMilli()
	for _, tc := range []struct {
		a    ledger.Member
		want string
		tone tone
	}{
		{ledger.Member{}, "none yet", plainTone},
		{ledger.Member{Passes: 7}, "7 passed, 0 failed", goodTone},
		{ledger.Member{Fails: 2, Streak: 2, FailShard: 0, FailReason: "x", FailTime: failed},
			"0 passed, 2 failed (no pass yet); last failure 15m ago, shard 0: x", warnTone},
		{ledger.Member{Passes: 9, Fails: 3, Streak: 2, FailShard: 5, FailReason: "bad proof", FailTime: failed},
			"9 passed, 3 failed (2 since the last pass); last failure 15m ago, shard 5: bad proof", warnTone},
		{ledger.Member{Passes: 9, Fails: 1, FailShard: 5, FailReason: "bad proof"},
			"9 passed, 1 failed (none since the last pass); last failure, shard 5: bad proof", goodTone},
	} {
		if got := AuditSummary(tc.a, now); got != tc.want {
			t.Errorf("AuditSummary(%+v) =\n %q, want\n %q", tc.a, got, tc.want)
		}
		if got := auditTone(tc.a); got != tc.tone {
			t.Errorf("auditTone(%+v) = %d, want %d", tc.a, got, tc.tone)
		}
	}
}

func TestShardSummary(t *testing.T) {
	s := followerFixture()
	want := "9 assigned (7.0 GiB), 5 stored (3.0 GiB), 1 proven (2.0 GiB), 1 failed its newest audit"
	if got := ShardSummary(s); got != want {
		t.Fatalf("ShardSummary =\n %q, want\n %q", got, want)
	}
	// Proof of a copy being released does not count: it is not assigned.
	s.Shards[5].Proven = true
	if got := ShardSummary(s); got != want {
		t.Fatalf("a released copy counted: %q", got)
	}
	if got := ShardSummary(follower.Status{}); got != "0 assigned (0 B), 0 stored (0 B), 0 proven (0 B)" {
		t.Fatalf("empty: %q", got)
	}
}

func TestMemberState(t *testing.T) {
	active := curator.MemberInfo{State: curator.StateActive}
	for _, tc := range []struct {
		name string
		ml   curator.MemberLoad
		want string
		tone tone
	}{
		{"good", curator.MemberLoad{MemberInfo: active, Standing: curator.StandingGood}, "active", plainTone},
		{"no standing", curator.MemberLoad{MemberInfo: active}, "active", plainTone},
		{"offline, good", curator.MemberLoad{MemberInfo: curator.MemberInfo{State: curator.StateOffline}, Standing: curator.StandingGood}, "offline", warnTone},
		{"failing", curator.MemberLoad{MemberInfo: active, Standing: curator.StandingFailing, StandingWhy: "3 audits failed in a row"},
			"failing: 3 audits failed in a row", warnTone},
		{"expelled, offline", curator.MemberLoad{MemberInfo: curator.MemberInfo{State: curator.StateOffline}, Standing: curator.StandingExpelled},
			"expelled (offline)", warnTone},
		{"pending hides probation", curator.MemberLoad{MemberInfo: curator.MemberInfo{State: curator.StatePending}, Standing: curator.StandingProbation}, "pending", warnTone},
		{"refused offer", curator.MemberLoad{MemberInfo: curator.MemberInfo{State: curator.StateActive, Refused: "pledge over 64 TiB"}, Standing: curator.StandingGood},
			"active; offer refused: pledge over 64 TiB", warnTone},
	} {
		got, tn, _ := memberState(tc.ml)
		if got != tc.want || tn != tc.tone {
			t.Errorf("%s: %q (tone %d), want %q (tone %d)", tc.name, got, tn, tc.want, tc.tone)
		}
	}
}

// TestCuratorCountsProven: health counts proven holders, never ACKs alone,
// and shows the claims apart.
func TestCuratorCountsProven(t *testing.T) {
	liars := []curator.ShardInfo{{ID: 1, Bytes: gib, Min: 2, Max: 3, Acked: 3, Proven: 0, Status: curator.ShardBelowMin, Holders: holders(0, 2, 1)}}
	h := shardHealth(liars)
	if h.hist[0] != 1 || h.hist[3] != 0 || h.missing != 3 || h.underBytes != gib {
		t.Fatalf("three ACKs, none proven: histogram %v, missing %d, under %d", h.hist, h.missing, h.underBytes)
	}
	if h.claims != (copies{unproven: 2, failed: 1}) {
		t.Fatalf("claims %+v, want 2 unproven and 1 failed", h.claims)
	}
	// A released copy, a stale ACK and a proven copy are not claims.
	hs := holders(1, 2, 0)
	hs[1].State = ledger.Released
	hs[2].Current = false
	if c := claimed([]curator.ShardInfo{{Holders: hs}}); c != (copies{}) {
		t.Fatalf("claims %+v, want none", c)
	}

	m := loadedCurator(120, 40)
	v := m.View()
	for _, want := range []string{"0  proven", "4+ proven", "ACKed, not yet proven 2 · audit failed 1",
		"PROVEN", "30✓ 2✗", "failing: 2 audits failed in a row", "probation (offline)", "offer refused"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	// A holder proven at the next poll moves the shard up the histogram and
	// out of the claims.
	snap := curatorFixture()
	snap.Shards[1].Proven, snap.Shards[1].Status = 3, curator.ShardAtTarget
	snap.Shards[1].Holders[2].Proven = true
	feed(m, curatorMsg{snap: snap, at: now})
	if v := m.View(); !strings.Contains(v, "ACKed, not yet proven 1 · audit failed 1") || !strings.Contains(v, "3  proven "+strings.Repeat("█", 40)+" 3") {
		t.Fatalf("after a proof:\n%s", v)
	}
}

// TestFollowerProof: the rows and the summary lines show the proof of each
// copy and the follower's audit record, and follow new polls.
func TestFollowerProof(t *testing.T) {
	m := loadedFollower(120, 40)
	v := m.View()
	for _, want := range []string{
		"proven 20m ago · ACKed at seq 42",
		"ACKed at seq 42, not yet proven",
		"ACKed at seq 42, not yet recorded",
		"audit failed 15m ago: block 3 of path 2 missing",
		"9 assigned, 5 stored, 1 proven (2.0 GiB), 1 failed its newest audit",
		"12 passed, 1 failed (1 since the last pass); last failure 15m ago, shard 10: block 3 of path 2 missing",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	s := followerFixture()
	s.Shards[7].Proven, s.Shards[7].Audit, s.Shards[7].AuditedAt = true, ledger.Pass, now.Add(-time.Second)
	s.Audits.Passes, s.Audits.Streak = 13, 0
	feed(m, followerMsg{status: s, at: now})
	v = m.View()
	for _, want := range []string{"proven 1s ago · ACKed at seq 42", "2 proven (2.1 GiB)", "13 passed, 1 failed (none since the last pass)"} {
		if !strings.Contains(v, want) {
			t.Errorf("after a pass, view lacks %q:\n%s", want, v)
		}
	}
	// On 80 columns the audit line is cut visibly.
	feed(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	v = m.View()
	checkFits(t, v, 80, 24)
	if !strings.Contains(v, "\naudits     13 passed, 1 failed (none since the last pass); last failure 15m ago…\n") {
		t.Errorf("80 columns:\n%s", v)
	}
}
