package allocation

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// benchInput is the reference cluster: log-normal pledges (median
// 1 TiB, 99th/1st percentile 100x), replication 3, 70 % full.
func benchInput(members, shards int, seed uint64) Input {
	return benchInputFill(members, shards, seed, 0.7)
}

// benchInputFill is benchInput with fill times the pledges needed.
func benchInputFill(members, shards int, seed uint64, fill float64) Input {
	rng := rand.New(rand.NewPCG(seed, 99))
	sigma := math.Log(100) / (2 * 2.3263478740408408)
	in := Input{Algorithm: Algorithm, AlgVer: Version,
		Params: Params{ReplMin: 3, ReplMax: 3, ShardTarget: 1 << 32, Epsilon: DefaultEpsilon}}
	var capTotal float64
	for i := range members {
		c := int64(float64(int64(1)<<40) * math.Exp(sigma*rng.NormFloat64()))
		in.Members = append(in.Members, Member{Peer: []byte(fmt.Sprintf("bench-peer-%08d", i)), Capacity: max(c, 1)})
		capTotal += float64(c)
	}
	mean := fill * capTotal / 3 / float64(shards)
	for i := range shards {
		in.Shards = append(in.Shards, Shard{ID: int64(i), Bytes: int64(mean * (0.85 + 0.3*rng.Float64()))})
	}
	return in
}

func benchCompute(b *testing.B, members, shards int, version int64) {
	benchComputeFill(b, members, shards, version, 0.7)
}

func benchComputeFill(b *testing.B, members, shards int, version int64, fill float64) {
	in := benchInputFill(members, shards, 1, fill)
	in.AlgVer = version
	b.ReportAllocs()
	b.ResetTimer()
	var p *Plan
	var cpu time.Duration
	for b.Loop() {
		var err error
		c0 := cpuTime()
		if p, err = Compute(in); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(shards), "ns/shard")
	if cpu > 0 {
		// CPU time of all threads (the garbage collector's included)
		b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	}
	st := p.Stats()
	b.ReportMetric(st.Balance, "max/mean")
	if fill > 1 {
		b.ReportMetric(float64(st.BelowMin), "below-min")
	} else if st.BelowMin != 0 {
		b.Fatalf("below min %d", st.BelowMin)
	}
	if st.Overfull != 0 {
		b.Fatalf("overfull %d", st.Overfull)
	}
}

func BenchmarkCompute1kx100k(b *testing.B)   { benchCompute(b, 1000, 100_000, Version) }
func BenchmarkCompute10kx1M(b *testing.B)    { benchCompute(b, 10_000, 1_000_000, Version) }
func BenchmarkCompute1kx100kV1(b *testing.B) { benchCompute(b, 1000, 100_000, 1) }

// Over-full clusters (pledges for 1/1.2 of the copies): thousands of
// shards stay short, and version 3's repair tries them until its budget
// is spent; these measure what that costs.
func BenchmarkCompute1kx100kFull(b *testing.B)   { benchComputeFill(b, 1000, 100_000, Version, 1.2) }
func BenchmarkCompute1kx100kFullV2(b *testing.B) { benchComputeFill(b, 1000, 100_000, 2, 1.2) }
func BenchmarkCompute10kx1MFull(b *testing.B)    { benchComputeFill(b, 10_000, 1_000_000, Version, 1.2) }
func BenchmarkCompute10kx1MFullV2(b *testing.B)  { benchComputeFill(b, 10_000, 1_000_000, 2, 1.2) }

func BenchmarkShardsOf(b *testing.B) {
	in := benchInput(1000, 100_000, 1)
	p, err := Compute(in)
	if err != nil {
		b.Fatal(err)
	}
	peer := in.Members[500].Peer
	b.ReportAllocs()
	for b.Loop() {
		if len(p.ShardsOf(peer)) == 0 {
			b.Fatal("no shards")
		}
	}
}

// TestReferenceBalance checks the balance bound on a mid-sized cluster of
// the reference shape.
func TestReferenceBalance(t *testing.T) {
	in := benchInput(300, 30_000, 2)
	p, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	t.Logf("300 members x 30000 shards: max fill %.4f mean %.4f balance %.4f", st.MaxFill, st.MeanFill, st.Balance)
	if st.Balance > 1.0501 || st.BelowMin != 0 || st.Overfull != 0 {
		t.Fatalf("balance %.4f, below min %d, overfull %d", st.Balance, st.BelowMin, st.Overfull)
	}
}
