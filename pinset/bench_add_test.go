package pinset

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
)

// BenchmarkAdd is the curator's ingest into a real badger4: 20,000 new
// pins per op, by the size bound of one CRDT delta. go-ds-crdt re-measures
// the whole pending delta on every Put, so a delta of k pins costs O(k²):
//
//	go test -run '^$' -bench BenchmarkAdd -benchtime 10x ./pinset/
func BenchmarkAdd(b *testing.B) {
	for _, maxDelta := range []int{1 << 20, 512 << 10, 256 << 10, 128 << 10} {
		b.Run(fmt.Sprintf("delta=%dKiB", maxDelta>>10), func(b *testing.B) {
			cfg := testConfig(true)
			cfg.MaxDeltaBytes = maxDelta
			s := openSet(b, cfg, openBadger(b, b.TempDir()), memDAG())
			rng := rand.New(rand.NewPCG(1, 2))
			const per = 20_000
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				pins := makePins(uint64(i)*per, per, 64, rng)
				b.StartTimer()
				if _, err := s.Add(ctx, pins); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "pins/s")
		})
	}
}

// BenchmarkList lists 100,000 pins from a real badger4, as `curate pin ls`
// does through the API:
//
//	go test -run '^$' -bench BenchmarkList -benchtime 5x ./pinset/
//
// listBench opens a replica on badger holding n pins over 64 shards.
func listBench(b *testing.B, n uint64) *Set {
	s := openSet(b, testConfig(true), openBadger(b, b.TempDir()), memDAG())
	rng := rand.New(rand.NewPCG(1, 2))
	for i := uint64(0); i < n; i += 20_000 {
		if _, err := s.Add(context.Background(), makePins(i, min(20_000, n-i), 64, rng)); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkList(b *testing.B) {
	const n = 100_000
	s := listBench(b, n)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got := 0
		if err := s.List(ctx, func(Pin) error { got++; return nil }); err != nil {
			b.Fatal(err)
		}
		if got != n {
			b.Fatalf("listed %d pins, want %d", got, n)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "pins/s")
}

// BenchmarkListChunks is BenchmarkList through ListChunks, formatting
// each pin as a line of CID, shard, size and name, with one worker and
// with two.
func BenchmarkListChunks(b *testing.B) {
	const n = 100_000
	s := listBench(b, n)
	ctx := context.Background()
	format := func(dst []byte, p Pin) []byte {
		dst = append(dst, p.CID.String()...)
		dst = append(dst, '\t')
		dst = strconv.AppendInt(dst, p.Shard, 10)
		dst = append(dst, '\t')
		dst = strconv.AppendInt(dst, p.Size, 10)
		dst = append(dst, '\t')
		dst = append(dst, p.Name...)
		return append(dst, '\n')
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				lines := 0
				if err := s.ListChunks(ctx, nil, workers, format, func(c []byte) error {
					lines += bytes.Count(c, []byte{'\n'})
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				if lines != n {
					b.Fatalf("listed %d pins, want %d", lines, n)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "pins/s")
		})
	}
}
