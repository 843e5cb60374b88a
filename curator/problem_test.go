package curator

import (
	"testing"
	"time"

	"github.com/pinfold/pinfold/ledger"
)

func TestProblem(t *testing.T) {
	stored := func(nick string, proven bool) HolderInfo {
		return HolderInfo{Nickname: nick, Assigned: true, State: "stored", Current: true, Recorded: true, Proven: proven}
	}
	failed := stored("liar", false)
	failed.Audit, failed.AuditReason = ledger.Fail, "path 0: block missing"
	stale := stored("slow", false)
	stale.Current = false
	for _, tc := range []struct {
		name string
		s    ShardInfo
		want string
	}{
		{"at target", ShardInfo{Status: ShardAtTarget, Max: 2, Holders: []HolderInfo{stored("a", true), stored("b", true)}}, ""},
		{"over", ShardInfo{Status: ShardOver, Max: 1, Holders: []HolderInfo{stored("a", true), stored("b", true)}}, ""},
		{"nobody has room", ShardInfo{Status: ShardBelowMin, Max: 2, Bytes: 3 << 30},
			"0 of 2 holders assigned: not enough members with room for 3.0 GiB"},
		{"waiting for ACKs and audits", ShardInfo{Status: ShardBelowMin, Max: 3,
			Holders: []HolderInfo{{Nickname: "new", Assigned: true}, stale, stored("b", false)}},
			"no ACK yet from new, slow; ACKed, audit pending: b"},
		{"failed audit", ShardInfo{Status: ShardUnder, Max: 2, Holders: []HolderInfo{stored("a", true), failed}},
			"audit failed on liar (path 0: block missing)"},
		{"a leaving holder does not count", ShardInfo{Status: ShardUnder, Max: 2, Bytes: 1 << 20,
			Holders: []HolderInfo{stored("a", true), {Nickname: "gone", State: "stored", Current: true}}},
			"1 of 2 holders assigned: not enough members with room for 1.0 MiB"},
		{"peer ID without a nickname", ShardInfo{Status: ShardUnder, Max: 1, Holders: []HolderInfo{{Peer: "12D3KooWHnRwbu3PMgGfHL35PCpQpKMUj2nBkN1S81SvZRbhX8GP", Assigned: true}}},
			"no ACK yet from 12D3…bhX8GP"},
	} {
		if got := problem(tc.s); got != tc.want {
			t.Errorf("%s: problem = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestShardClock(t *testing.T) {
	var sc shardClock
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ss := []ShardInfo{{ID: 1, Status: ShardUnder}, {ID: 2, Status: ShardAtTarget}}
	sc.mark(ss, t0)
	if !ss[0].Since.Equal(t0) || !ss[1].Since.Equal(t0) {
		t.Fatalf("first sight: %v", ss)
	}
	// Shard 1 stays under: its time stays. Shard 2 drops: its time moves.
	ss = []ShardInfo{{ID: 1, Status: ShardUnder}, {ID: 2, Status: ShardUnder}}
	sc.mark(ss, t0.Add(time.Minute))
	if !ss[0].Since.Equal(t0) || !ss[1].Since.Equal(t0.Add(time.Minute)) {
		t.Fatalf("second sight: %v", ss)
	}
	// One shard's status, as pin status asks for it, keeps the others.
	one := ShardInfo{ID: 2, Status: ShardUnder}
	sc.markOne(&one, t0.Add(time.Hour))
	if !one.Since.Equal(t0.Add(time.Minute)) {
		t.Fatalf("markOne: since %v", one.Since)
	}
	// A shard that left the plan is forgotten; back, it starts again.
	sc.mark([]ShardInfo{{ID: 2, Status: ShardUnder}}, t0.Add(2*time.Hour))
	ss = []ShardInfo{{ID: 1, Status: ShardUnder}}
	sc.mark(ss, t0.Add(3*time.Hour))
	if !ss[0].Since.Equal(t0.Add(3 * time.Hour)) {
		t.Fatalf("returning shard: since %v", ss[0].Since)
	}
}
