package ledger

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

func ack(peer string, shard int64, state, digest string, seq, time int64) Entry {
	return Entry{Ack: &Ack{Peer: peer, Shard: shard, State: state, Digest: []byte(digest), Bytes: 10, Seq: seq, Time: time}}
}

func audit(holder string, shard int64, result, digest string) Entry {
	return Entry{Audit: &Audit{Auditor: "c", Holder: holder, Shard: shard, Digest: []byte(digest), Result: result, Reason: "r-" + result, Time: 1}}
}

func TestProven(t *testing.T) {
	type step struct {
		seq     int64
		entries []Entry
	}
	tests := []struct {
		name  string
		steps []step
		want  bool
	}{
		{"ack only", []step{{1, []Entry{ack("a", 1, Stored, "d1", 1, 1)}}}, false},
		{"ack then pass", []step{{1, []Entry{ack("a", 1, Stored, "d1", 1, 1)}}, {2, []Entry{audit("a", 1, Pass, "d1")}}}, true},
		{"pass in the same head as the ack", []step{{1, []Entry{ack("a", 1, Stored, "d1", 1, 1), audit("a", 1, Pass, "d1")}}}, false},
		{"pass before the ack", []step{{1, []Entry{audit("a", 1, Pass, "d1")}}, {2, []Entry{ack("a", 1, Stored, "d1", 1, 1)}}}, false},
		{"pass of other content", []step{{1, []Entry{ack("a", 1, Stored, "d1", 1, 1)}}, {2, []Entry{audit("a", 1, Pass, "d0")}}}, false},
		{"pass then fail", []step{{1, []Entry{ack("a", 1, Stored, "d1", 1, 1)}}, {2, []Entry{audit("a", 1, Pass, "d1")}}, {3, []Entry{audit("a", 1, Fail, "d1")}}}, false},
		{"fail and pass in one head", []step{{1, []Entry{ack("a", 1, Stored, "d1", 1, 1)}}, {2, []Entry{audit("a", 1, Fail, "d1"), audit("a", 1, Pass, "d1")}}}, false},
		{"heartbeat keeps the proof", []step{{1, []Entry{ack("a", 1, Stored, "d1", 1, 1)}}, {2, []Entry{audit("a", 1, Pass, "d1")}}, {3, []Entry{ack("a", 1, Stored, "d1", 2, 5)}}}, true},
		{"new content needs a new proof", []step{{1, []Entry{ack("a", 1, Stored, "d1", 1, 1)}}, {2, []Entry{audit("a", 1, Pass, "d1")}}, {3, []Entry{ack("a", 1, Stored, "d2", 2, 5)}}}, false},
		{"released", []step{{1, []Entry{ack("a", 1, Stored, "d1", 1, 1)}}, {2, []Entry{audit("a", 1, Pass, "d1")}}, {3, []Entry{ack("a", 1, Released, "d1", 2, 5)}}}, false},
		{"replayed old ack changes nothing", []step{{1, []Entry{ack("a", 1, Stored, "d1", 1, 1)}}, {2, []Entry{ack("a", 1, Released, "d1", 1, 2)}}, {3, []Entry{ack("a", 1, Stored, "d1", 1, 1)}}, {4, []Entry{audit("a", 1, Pass, "d1")}}}, false},
		{"head applied twice", []step{{1, []Entry{ack("a", 1, Stored, "d1", 1, 1)}}, {2, []Entry{audit("a", 1, Pass, "d1")}}, {2, []Entry{audit("a", 1, Fail, "d1")}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New()
			for _, s := range tt.steps {
				l.Apply(s.seq, s.entries)
			}
			if got := l.Proven("a", 1, []byte("d1")); got != tt.want {
				t.Errorf("Proven = %v, want %v; holding %+v", got, tt.want, l.Holding("a", 1))
			}
		})
	}
}

func TestMemberRecord(t *testing.T) {
	l := New()
	l.Apply(1, []Entry{ack("a", 1, Stored, "d1", 1, 1), ack("a", 2, Stored, "d2", 1, 1)})
	l.Apply(2, []Entry{audit("a", 1, Pass, "d1"), audit("a", 2, Fail, "d2")})
	l.Apply(3, []Entry{audit("a", 2, Fail, "d2")})
	m := l.Member("a")
	if m.Passes != 1 || m.Fails != 2 || m.Streak != 2 || m.LastPass != 2 || m.LastFail != 3 || m.FailShard != 2 || m.FailReason != "r-fail" {
		t.Fatalf("member record %+v", m)
	}
	l.Apply(4, []Entry{audit("a", 2, Pass, "d2")})
	if m := l.Member("a"); m.Streak != 0 || m.Passes != 2 {
		t.Fatalf("after a pass: %+v", m)
	}
	if got := l.Member("nobody"); got.Passes != 0 || got.Fails != 0 {
		t.Fatalf("unknown member: %+v", got)
	}
}

// randomEntries draws a log of ACKs and audits over few peers, shards and
// digests so that every rule gets exercised.
func randomEntries(r *rand.Rand, n int) []Entry {
	peers, states, results, digests := []string{"a", "b"}, []string{Stored, Released}, []string{Pass, Fail}, []string{"d1", "d2"}
	out := make([]Entry, n)
	for i := range out {
		p, sh, d := peers[r.IntN(2)], int64(r.IntN(2)), digests[r.IntN(2)]
		if r.IntN(2) == 0 {
			out[i] = ack(p, sh, states[r.IntN(2)], d, int64(r.IntN(5)), int64(r.IntN(5)))
		} else {
			out[i] = audit(p, sh, results[r.IntN(2)], d)
		}
	}
	return out
}

// TestSnapshotRoundTrip: a restored snapshot is the same ledger, and
// applying the same heads to both keeps them equal.
func TestSnapshotRoundTrip(t *testing.T) {
	seed := uint64(20261202)
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	for range 200 {
		a := New()
		for seq := int64(1); seq <= 6; seq++ {
			a.Apply(seq, randomEntries(r, r.IntN(6)))
		}
		b := Restore(a.Snapshot())
		if !reflect.DeepEqual(a.Snapshot(), b.Snapshot()) {
			t.Fatal("restored snapshot differs")
		}
		each := 0
		a.Each(func(h Holding) {
			each++
			if got := a.Holding(h.Peer, h.Shard); !reflect.DeepEqual(*got, h) {
				t.Fatalf("Each gave %+v, Holding %+v", h, *got)
			}
		})
		if each != len(a.Snapshot().Holdings) {
			t.Fatalf("Each walked %d holdings, the snapshot has %d", each, len(a.Snapshot().Holdings))
		}
		more := randomEntries(r, 4)
		a.Apply(7, more)
		b.Apply(7, more)
		if !reflect.DeepEqual(a.Snapshot(), b.Snapshot()) {
			t.Fatal("ledgers diverged after the same head")
		}
	}
}

// TestProvenNeedsChainOrder is a property: whatever the log, a holding is
// proven only if it is stored, and its newest audit is a pass of that
// content recorded in a later head than the commitment.
func TestProvenNeedsChainOrder(t *testing.T) {
	seed := uint64(7)
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 2))
	for range 500 {
		l := New()
		for seq := int64(1); seq <= 8; seq++ {
			l.Apply(seq, randomEntries(r, r.IntN(4)))
		}
		for _, p := range []string{"a", "b"} {
			for sh := range int64(2) {
				for _, d := range []string{"d1", "d2"} {
					h := l.Holding(p, sh)
					if !l.Proven(p, sh, []byte(d)) {
						continue
					}
					if h.State != Stored || string(h.Digest) != d || h.Result != Pass || h.Audited <= h.Since {
						t.Fatalf("proven %s/%d/%s but holding %+v", p, sh, d, h)
					}
				}
			}
		}
	}
}

func FuzzApply(f *testing.F) {
	f.Add(uint64(1), 5)
	f.Fuzz(func(t *testing.T, seed uint64, n int) {
		r := rand.New(rand.NewPCG(seed, 3))
		l := New()
		for seq := int64(0); seq < int64(n%16); seq++ {
			l.Apply(seq, randomEntries(r, r.IntN(8)))
		}
		_ = Restore(l.Snapshot())
	})
}
