package localcluster_test

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/internal/testlog"
	"github.com/pinfold/pinfold/localcluster"
)

// TestTransferThroughput measures bytes/s fetched follower-from-curator on
// loopback: the curator adds one file of PINFOLD_BENCH_MIB MiB (random
// bytes), one follower with room for it stores it. Not part of the normal
// run: set PINFOLD_BENCH_MIB (e.g. 1024).
func TestTransferThroughput(t *testing.T) {
	mib, _ := strconv.Atoi(os.Getenv("PINFOLD_BENCH_MIB"))
	if mib <= 0 {
		t.Skip("set PINFOLD_BENCH_MIB to run the transfer measurement")
	}
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "data.bin")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, int64(mib)<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg := configs.DefaultCurator()
	cfg.ReplicationMin, cfg.ReplicationMax = 1, 1
	cfg.ShardTarget = configs.Size(int64(mib+64) << 20)
	cfg.HeadInterval = configs.Duration(200 * time.Millisecond)
	c, err := localcluster.Start(ctx, localcluster.Options{Dir: filepath.Join(dir, "cluster"), Curator: cfg, Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	added, err := c.Curator.AddContent(ctx, curator.AddRequest{Path: file})
	if err != nil {
		t.Fatal(err)
	}
	fol, err := c.AddFollower(ctx, "f", localcluster.FollowerOptions{Pledge: pledge(int64(2*mib) << 20), OfferInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var began time.Time
	waitFor(t, 10*time.Minute, "the follower to store the file", func() bool {
		s := fol.Daemon.Status()
		for _, r := range s.Shards {
			if r.State == "fetching" && began.IsZero() {
				began = time.Now()
			}
			if r.State == "stored" {
				return true
			}
		}
		return false
	})
	took := time.Since(began)
	size := added[0].Size
	t.Logf("fetched %d bytes follower-from-curator in %s: %.1f MiB/s", size, took.Round(time.Millisecond), float64(size)/took.Seconds()/(1<<20))
}
