package localcluster_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/internal/testlog"
	"github.com/pinfold/pinfold/localcluster"
	"github.com/pinfold/pinfold/trust"
)

// TestLightFollowersVerifyEveryHead starts 20 light followers against one
// curator: each is admitted (its offers reach the curator), ACKs the
// shards the head gives it (the curator accepts the ACKs), and verifies
// every head the curator publishes by gossip, within the time gossip
// takes, not the 30 s of the head poll.
func TestLightFollowersVerifyEveryHead(t *testing.T) {
	t.Parallel()
	const n = 20
	ctx := context.Background()
	cfg := configs.DefaultCurator()
	cfg.HeadInterval = configs.Duration(200 * time.Millisecond)
	cfg.ShardTarget = 64 << 10
	c, err := localcluster.Start(ctx, localcluster.Options{Dir: t.TempDir(), Curator: cfg, Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Curator.AddPins(ctx, fakePins(t, 0, 400)); err != nil { // about 6 shards
		t.Fatal(err)
	}
	var mu sync.Mutex
	newest := make([]int64, n) // newest seq each follower verified
	var fs []*localcluster.LightFollower
	for i := range n {
		f, err := localcluster.StartLight(ctx, localcluster.LightOptions{
			Cluster: c.Config, Nickname: fmt.Sprintf("light-%d", i), Capacity: 1 << 30,
			OfferInterval: time.Second,
			OnVerified: func(v trust.Verified, _ time.Time) {
				mu.Lock()
				newest[i] = max(newest[i], v.Head.Seq)
				mu.Unlock()
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = f.Run(rctx) }() // ends at cleanup
		t.Cleanup(func() { cancel(); <-done; f.Close() })
		fs = append(fs, f)
	}
	// Every light follower is admitted (its offers reach the curator) and
	// its stored ACKs of the shards the newest head gives it reached the
	// curator. (Their digests are not the content's: a light follower
	// holds none.)
	waitFor(t, 60*time.Second, "a head listing every light follower, each holding its shards by ACK", func() bool {
		if s := c.Curator.Status(); s.Members != n || s.PendingLog != 0 {
			return false
		}
		shards, err := c.Curator.Shards(ctx)
		if err != nil {
			t.Fatal(err)
		}
		holding := map[string]bool{}
		for _, s := range shards {
			for _, h := range s.Holders {
				if h.Assigned && h.State == "stored" {
					holding[h.Peer] = true
				}
			}
		}
		return !slices.ContainsFunc(fs, func(f *localcluster.LightFollower) bool { return !holding[f.ID.String()] })
	})
	for k := range 5 {
		if _, err := c.Curator.PublishNow(ctx, true); err != nil {
			t.Fatal(err)
		}
		v, _ := c.Curator.Heads().Newest()
		waitFor(t, 10*time.Second, fmt.Sprintf("every light follower to verify head %d (seq %d)", k, v.Head.Seq), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return !slices.ContainsFunc(newest, func(s int64) bool { return s < v.Head.Seq })
		})
	}
}
