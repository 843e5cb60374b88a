package content

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/store"
)

// BenchmarkFetch256MiB measures Fetch of one 256 MiB pin (1 MiB raw
// leaves, the import default) from host A to host B over bitswap on
// 127.0.0.1 TCP, into B's badger4 store, for several concurrencies. Each
// iteration fetches into a fresh store; only Fetch is timed.
//
//	go test -run '^$' -bench Fetch256MiB -benchtime 3x ./content/
func BenchmarkFetch256MiB(b *testing.B) {
	const size = 256 << 20
	file := filepath.Join(b.TempDir(), "pin.bin")
	writeRandFile(b, file, 77, size)
	sa := openStore(b)
	a := newNode(b, 1, sa)
	im := importOne(b, a.DAGService(), file, 0)
	b.Logf("pin %s: %d blocks, %d bytes", im.CID, im.Blocks, im.Size)

	for _, conc := range []int{8, 16, 32} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			b.SetBytes(im.Size)
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				sb, err := store.Open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				cfg := p2p.DefaultConfig()
				cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
				cfg.Blockstore = sb.Blocks
				nb, err := p2p.New(testKey(b, uint64(100+i)), cfg, nil)
				if err != nil {
					b.Fatal(err)
				}
				connect(b, nb, a)
				f := NewFetcher(nb.DAGService(), sb.Blocks, sb.Datastore, FetcherConfig{Concurrency: conc})
				b.StartTimer()
				began := time.Now()
				st, err := f.Fetch(context.Background(), im.CID, nil)
				took := time.Since(began)
				b.StopTimer()
				if err != nil || st.Bytes != im.Size {
					b.Fatalf("Fetch = %+v, %v", st, err)
				}
				total += took
				_ = nb.Close()
				_ = sb.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(im.Size)/(1<<20)/(total.Seconds()/float64(b.N)), "MiB/s")
		})
	}
}
