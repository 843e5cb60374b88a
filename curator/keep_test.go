package curator

import (
	"bytes"
	"testing"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/ledger"
)

// keepPlan: shard 0 of 100 bytes, replication 1, over members a, b, c.
func keepPlan(t *testing.T) (*allocation.Plan, []byte) {
	t.Helper()
	p, err := allocation.Compute(allocation.Input{
		Algorithm: allocation.Algorithm, AlgVer: allocation.Version,
		Params:  allocation.Params{ReplMin: 1, ReplMax: 1, ShardTarget: 100, Epsilon: 50_000},
		Members: []allocation.Member{{Peer: []byte("a"), Capacity: 1000}, {Peer: []byte("b"), Capacity: 1000}, {Peer: []byte("c"), Capacity: 1000}},
		Shards:  []allocation.Shard{{ID: 0, Bytes: 100, Pins: 1, ReplMin: 1, ReplMax: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := p.Holders(0)
	return p, hs[0]
}

func TestPinEstablished(t *testing.T) {
	plan, planned := keepPlan(t)
	var others [][]byte
	for _, m := range [][]byte{[]byte("a"), []byte("b"), []byte("c")} {
		if !bytes.Equal(m, planned) {
			others = append(others, m)
		}
	}
	proven := func(p []byte, digest string) ledger.Holding {
		return ledger.Holding{Peer: string(p), Shard: 0, State: ledger.Stored, Digest: []byte(digest)}
	}
	cur := func(int64) []byte { return []byte("d1") }
	no := func(int64) bool { return false }
	tests := []struct {
		name     string
		holdings []ledger.Holding
		digest   func(int64) []byte
		curator  func(int64) bool
		want     []byte // pinned peer; nil: no override
	}{
		{"nobody established", nil, cur, no, nil},
		{"the planned holder is established", []ledger.Holding{proven(planned, "d1")}, cur, no, nil},
		{"an established holder outside the plan is kept", []ledger.Holding{proven(others[0], "d1")}, cur, no, others[0]},
		{"the smallest of two is kept", []ledger.Holding{proven(others[1], "d1"), proven(others[0], "d1")}, cur, no, others[0]},
		{"a proof of old content does not keep it", []ledger.Holding{proven(others[0], "d0")}, cur, no, nil},
		{"the curator stores it itself", []ledger.Holding{proven(others[0], "d1")}, cur, func(int64) bool { return true }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pinEstablished(plan, map[int64][]ledger.Holding{0: tt.holdings}, tt.digest, tt.curator)
			switch {
			case tt.want == nil && len(got) != 0:
				t.Fatalf("overrides %+v, want none", got)
			case tt.want != nil && (len(got) != 1 || got[0].Shard != 0 || len(got[0].Pin) != 1 || !bytes.Equal(got[0].Pin[0], tt.want)):
				t.Fatalf("overrides %+v, want shard 0 pinned to %q", got, tt.want)
			}
		})
	}
	// The override holds: with it the plan keeps the established member.
	in := allocation.Input{
		Algorithm: allocation.Algorithm, AlgVer: allocation.Version,
		Params:    allocation.Params{ReplMin: 1, ReplMax: 1, ShardTarget: 100, Epsilon: 50_000},
		Members:   []allocation.Member{{Peer: []byte("a"), Capacity: 1000}, {Peer: []byte("b"), Capacity: 1000}, {Peer: []byte("c"), Capacity: 1000}},
		Shards:    []allocation.Shard{{ID: 0, Bytes: 100, Pins: 1, ReplMin: 1, ReplMax: 1}},
		Overrides: []allocation.Override{{Shard: 0, Pin: [][]byte{others[0]}}},
	}
	p, err := allocation.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	if hs, _ := p.Holders(0); len(hs) != 1 || !bytes.Equal(hs[0], others[0]) {
		t.Fatalf("with the override the plan gives shard 0 to %q, want %q", hs, others[0])
	}
}
