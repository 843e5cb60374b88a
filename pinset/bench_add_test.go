package pinset

import (
	"context"
	"fmt"
	"math/rand/v2"
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
