package localcluster_test

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/internal/testlog"
	"github.com/pinfold/pinfold/localcluster"
)

// TestShardFetchRespectsMaxDownload: a follower with max_download 1MiB/s
// fetches a 4MiB shard from the curator no faster than the limit (plus
// the burst, 64KiB at least) and within 10 % of it; its status reports
// the limit and the bytes.
func TestShardFetchRespectsMaxDownload(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	const size = 4 << 20
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "data.bin")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg := configs.DefaultCurator()
	cfg.ReplicationMin, cfg.ReplicationMax = 1, 1
	cfg.ShardTarget = configs.Size(64 << 20)
	cfg.HeadInterval = configs.Duration(200 * time.Millisecond)
	c, err := localcluster.Start(ctx, localcluster.Options{Dir: filepath.Join(dir, "cluster"), Curator: cfg, Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Curator.AddContent(ctx, curator.AddRequest{Path: file}); err != nil {
		t.Fatal(err)
	}
	fol, err := c.AddFollower(ctx, "f", localcluster.FollowerOptions{Pledge: pledge(64 << 20), OfferInterval: time.Second, MaxDownload: limit})
	if err != nil {
		t.Fatal(err)
	}
	// The follower's own count of the bytes read from bitswap's streams,
	// taken from the first block of the shard to the last: t0 is read
	// before the count, t1 after, so the bytes between are at most the
	// burst plus the limit times t1-t0.
	var (
		t0, t1         time.Time
		total0, total1 uint64
	)
	waitFor(t, time.Minute, "the follower to store the shard", func() bool {
		before := time.Now()
		s := fol.Daemon.Status()
		for _, r := range s.Shards {
			switch {
			case r.State == follower.ShardFetching && r.Fetched > 0 && t0.IsZero():
				t0, total0 = before, s.Bandwidth.Down.Total
			case r.State == follower.ShardStored && !t0.IsZero():
				t1, total1 = time.Now(), s.Bandwidth.Down.Total
				return true
			}
		}
		return false
	})
	took := t1.Sub(t0)
	got := float64(total1-total0) / took.Seconds()
	ceiling := limit + float64(max(limit/10, 64<<10))/took.Seconds()
	t.Logf("read %d bytes in %s: %.0f B/s, %.1f%% of the limit %d B/s (ceiling with the burst %.0f B/s)",
		total1-total0, took.Round(time.Millisecond), got, 100*got/limit, limit, ceiling)
	if got > ceiling {
		t.Errorf("read at %.0f B/s, above the limit %d B/s plus the burst", got, limit)
	}
	if got < 0.9*limit {
		t.Errorf("read at %.0f B/s, more than 10%% below the limit %d B/s", got, limit)
	}
	if total1-total0 < size/2 {
		t.Errorf("measured only %d bytes of the %d-byte shard", total1-total0, size)
	}
	bw := fol.Daemon.Status().Bandwidth
	if bw.Down.Limit != limit || bw.Up.Limit != 0 || bw.Down.Total < uint64(size) {
		t.Errorf("status bandwidth %+v; want download limit %d, no upload limit, at least %d bytes down", bw, limit, size)
	}
}
