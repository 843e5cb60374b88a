package allocation

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// genConfig describes a random input for property tests.
type genConfig struct {
	members, shards int
	domains         int     // 0: none
	offline         float64 // fraction of members offline
	overrides       int
	zeroCap         float64 // fraction of members with capacity 0
	fill            float64 // stored bytes at max replication / capacity
	replMin         int64
	replMax         int64
	sparseIDs       bool
}

func peerN(i int) []byte { return []byte(fmt.Sprintf("peer-%04d", i)) }

func genInput(rng *rand.Rand, c genConfig) Input {
	in := Input{Algorithm: Algorithm, AlgVer: Version,
		Params: Params{ReplMin: c.replMin, ReplMax: c.replMax, ShardTarget: 1 << 20, Epsilon: DefaultEpsilon}}
	var capTotal int64
	for i := range c.members {
		m := Member{Peer: peerN(i), Capacity: 1 + rng.Int64N(1<<30)}
		if rng.Float64() < c.zeroCap {
			m.Capacity = 0
		}
		if c.domains > 0 && rng.IntN(4) > 0 {
			m.Domain = fmt.Sprintf("dom%d", rng.IntN(c.domains))
		}
		if rng.Float64() < c.offline {
			seq := rng.Int64N(100)
			m.Offline = &seq
		}
		capTotal += m.Capacity
		in.Members = append(in.Members, m)
	}
	per := int64(float64(capTotal) * c.fill / float64(max(c.shards, 1)) / float64(c.replMax))
	id := int64(0)
	for range c.shards {
		s := Shard{ID: id, Bytes: per/2 + rng.Int64N(per+1), Pins: 1}
		if rng.IntN(10) == 0 {
			s.ReplMin = 1 + rng.Int64N(3)
			s.ReplMax = s.ReplMin + rng.Int64N(2)
		}
		in.Shards = append(in.Shards, s)
		id++
		if c.sparseIDs {
			id += rng.Int64N(5000)
		}
	}
	for range c.overrides {
		if c.members == 0 {
			break
		}
		ov := Override{Shard: rng.Int64N(id + 2)}
		if slices.ContainsFunc(in.Overrides, func(o Override) bool { return o.Shard == ov.Shard }) {
			continue
		}
		for range rng.IntN(3) {
			ov.Pin = append(ov.Pin, peerN(rng.IntN(c.members+1)))
		}
		for range rng.IntN(3) {
			ov.Exclude = append(ov.Exclude, peerN(rng.IntN(c.members+1)))
		}
		in.Overrides = append(in.Overrides, ov)
	}
	return in
}

func randomGen(rng *rand.Rand) genConfig {
	lo := 1 + rng.Int64N(3)
	return genConfig{
		members:   1 + rng.IntN(30),
		shards:    rng.IntN(200),
		domains:   rng.IntN(5),
		offline:   []float64{0, 0, 0.1, 0.3}[rng.IntN(4)],
		overrides: rng.IntN(6),
		zeroCap:   []float64{0, 0, 0.2}[rng.IntN(3)],
		fill:      []float64{0.3, 0.7, 0.95, 1.5}[rng.IntN(4)],
		replMin:   lo,
		replMax:   lo + rng.Int64N(3),
		sparseIDs: rng.IntN(5) == 0,
	}
}

// checkInvariants verifies the properties every plan must have, from its
// public view and the input alone.
func checkInvariants(t testing.TB, in Input, p *Plan) {
	t.Helper()
	byPeer := map[string]Member{}
	for _, m := range in.Members {
		byPeer[string(m.Peer)] = m
	}
	excluded := map[int64]map[string]bool{}
	for _, ov := range in.Overrides {
		excluded[ov.Shard] = map[string]bool{}
		for _, x := range ov.Exclude {
			excluded[ov.Shard][string(x)] = true
		}
	}
	load := map[string]int64{}
	shardsOf := map[string][]int64{}
	if p.Len() != len(in.Shards) {
		t.Fatalf("plan has %d shards, input %d", p.Len(), len(in.Shards))
	}
	for i := range p.Len() {
		sh := p.Shard(i)
		seen := map[string]bool{}
		for _, h := range sh.Holders {
			if seen[string(h)] {
				t.Fatalf("shard %d: holder %s twice", sh.ID, h)
			}
			seen[string(h)] = true
			if _, ok := byPeer[string(h)]; !ok {
				t.Fatalf("shard %d: holder %s is not a member", sh.ID, h)
			}
			if excluded[sh.ID][string(h)] {
				t.Fatalf("shard %d: excluded peer %s holds it", sh.ID, h)
			}
			load[string(h)] += sh.Bytes
			shardsOf[string(h)] = append(shardsOf[string(h)], sh.ID)
		}
	}
	loads := p.Members()
	for _, ml := range loads {
		m := byPeer[string(ml.Peer)]
		if load[string(ml.Peer)] != ml.Bytes {
			t.Fatalf("member %s: reported load %d, holders sum %d", ml.Peer, ml.Bytes, load[string(ml.Peer)])
		}
		if ml.Bytes > m.Capacity {
			t.Fatalf("member %s: load %d exceeds pledge %d", ml.Peer, ml.Bytes, m.Capacity)
		}
		if got := p.ShardsOf(ml.Peer); !slices.Equal(got, shardsOf[string(ml.Peer)]) {
			t.Fatalf("ShardsOf(%s) = %v, want %v", ml.Peer, got, shardsOf[string(ml.Peer)])
		}
	}
	// Maximality: a shard short of its maximum (or of min live holders) has
	// no member left that could take it.
	short := map[int64]bool{}
	for _, f := range p.Shortfalls() {
		short[f.Shard] = true
	}
	for i := range p.Len() {
		sh := p.Shard(i)
		live := 0
		for _, h := range sh.Holders {
			if byPeer[string(h)].Offline == nil {
				live++
			}
		}
		if (live < sh.Min) != short[sh.ID] {
			t.Fatalf("shard %d: live %d min %d but shortfall listed=%v", sh.ID, live, sh.Min, short[sh.ID])
		}
		if len(sh.Holders) >= sh.Max && live >= sh.Min {
			continue
		}
		for _, ml := range loads {
			if slices.ContainsFunc(sh.Holders, func(h []byte) bool { return bytes.Equal(h, ml.Peer) }) ||
				excluded[sh.ID][string(ml.Peer)] || ml.Capacity == 0 {
				continue
			}
			wantAny := len(sh.Holders) < sh.Max
			wantLive := live < sh.Min && !ml.Offline
			if (wantAny || wantLive) && ml.Capacity-ml.Bytes >= sh.Bytes {
				t.Fatalf("shard %d has %d holders (%d live, min %d max %d) but %s has room %d >= %d",
					sh.ID, len(sh.Holders), live, sh.Min, sh.Max, ml.Peer, ml.Capacity-ml.Bytes, sh.Bytes)
			}
		}
	}
}

func planText(t testing.TB, p *Plan) string {
	t.Helper()
	var b bytes.Buffer
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
