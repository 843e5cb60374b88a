package localcluster_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/content"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/internal/testlog"
	"github.com/pinfold/pinfold/kubo/kubotest"
	"github.com/pinfold/pinfold/localcluster"
	"github.com/pinfold/pinfold/pinset"
)

// TestShardsInKubo runs a follower that stores its shards in a real kubo
// daemon (PINFOLD_KUBO) instead of its embedded block store: kubo fetches
// the content from the curator, every shard reaches its ACK with the
// signed sizes, `ipfs pin ls` shows the follower's named pins; when a
// second follower joins and takes shards over, the kubo follower's
// releases remove exactly those pins from kubo.
func TestShardsInKubo(t *testing.T) {
	bin := kubotest.Binary(t)
	began := time.Now()
	ipfs := kubotest.Start(t, bin)
	t.Logf("kubo ready in %s", time.Since(began).Round(time.Millisecond))
	ctx := context.Background()
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive")
	if err := content.GenerateSample(archive, 1, 24, 3<<20); err != nil {
		t.Fatal(err)
	}
	cfg := configs.DefaultCurator()
	cfg.ReplicationMin, cfg.ReplicationMax = 1, 1
	cfg.ShardTarget = configs.Size(512 << 10)
	cfg.HeadInterval = configs.Duration(time.Second)
	c, err := localcluster.Start(ctx, localcluster.Options{Dir: filepath.Join(dir, "cluster"), Curator: cfg, Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}()
	if _, err := c.Curator.AddContent(ctx, curator.AddRequest{Path: archive, Each: true}); err != nil {
		t.Fatal(err)
	}
	k, err := c.AddFollower(ctx, "k", localcluster.FollowerOptions{
		Pledge: pledge(4 << 20), Nickname: "k", OfferInterval: time.Second, AckInterval: 5 * time.Second, IPFSAPI: ipfs.API,
	})
	if err != nil {
		t.Fatal(err)
	}
	shards, err := localcluster.WaitSettled(ctx, c, 1, 2*time.Minute, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	settled := time.Since(began)
	if len(shards) < 2 {
		t.Fatalf("%d shards; the test wants at least 2", len(shards))
	}
	self := k.Daemon.Node().ID().String()
	pinName := "pinfold/demo/" + self
	st := k.Daemon.Status()
	var total int64
	for _, r := range st.Shards {
		if r.State != follower.ShardStored || r.Fetched != r.Bytes || r.AckedSeq < 0 {
			t.Fatalf("shard %d: state %s, stored %d bytes of the signed %d, acked at seq %d", r.ID, r.State, r.Fetched, r.Bytes, r.AckedSeq)
		}
		total += r.Bytes
	}
	if len(st.Shards) != len(shards) || st.Stored != total {
		t.Fatalf("follower holds %d of %d shards, usage %d bytes; want all, %d", len(st.Shards), len(shards), st.Stored, total)
	}
	for _, s := range shards {
		if s.Acked != 1 || len(s.Holders) == 0 || s.Holders[0].Peer != self || s.Holders[0].State != "stored" {
			t.Fatalf("shard %d: curator sees %+v", s.ID, s.Holders)
		}
	}
	pinned := kuboPins(t, ipfs)
	for _, s := range shards {
		for _, p := range kuboShardPins(t, k, s.ID) {
			if pinned[p] != pinName {
				t.Fatalf("pin %s of shard %d: kubo has it named %q, want %q", p, s.ID, pinned[p], pinName)
			}
		}
	}
	t.Logf("%d shards (%d bytes) stored in kubo and ACKed after %s", len(shards), total, settled.Round(time.Millisecond))

	// Restart with a pin removed from kubo behind the follower's back: the
	// follower finds it missing at start and fetches that shard again.
	gone := kuboShardPins(t, k, shards[0].ID)[0]
	if err := c.StopFollower("k"); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = ipfs.Run(rctx, "pin", "rm", gone)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if k, err = c.AddFollower(ctx, "k", localcluster.FollowerOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the restarted follower to pin the removed pin again", func() bool {
		for _, r := range k.Daemon.Status().Shards {
			if r.State != follower.ShardStored {
				return false
			}
		}
		return kuboPins(t, ipfs)[gone] == pinName
	})

	// A second follower (embedded store) joins; shards move to it and
	// the kubo follower unpins them once their new holder ACKed.
	if _, err := c.AddFollower(ctx, "e", localcluster.FollowerOptions{
		Pledge: pledge(4 << 20), Nickname: "e", OfferInterval: time.Second, AckInterval: 5 * time.Second,
	}); err != nil {
		t.Fatal(err)
	}
	after, err := localcluster.WaitSettled(ctx, c, 2, 2*time.Minute, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	pinned = kuboPins(t, ipfs)
	moved, kept := 0, 0
	for _, s := range after {
		held := false
		for _, h := range s.Holders {
			if h.Peer == self && h.State == "stored" && h.Current {
				held = true
			}
		}
		for _, p := range kuboShardPins(t, k, s.ID) {
			if _, ok := pinned[p]; ok != held {
				t.Fatalf("shard %d held by the kubo follower: %v; its pin %s pinned in kubo: %v", s.ID, held, p, ok)
			}
		}
		if held {
			kept++
		} else {
			moved++
		}
	}
	if moved == 0 || kept == 0 {
		t.Fatalf("after the join the kubo follower holds %d shards and gave up %d; want some of each", kept, moved)
	}
	t.Logf("rebalanced: %d shards moved off kubo (unpinned), %d kept; test took %s", moved, kept, time.Since(began).Round(time.Millisecond))
}

// kuboPins returns the recursive pins `ipfs pin ls` shows, by CID, with
// their names.
func kuboPins(t *testing.T, n *kubotest.Node) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := n.Run(ctx, "pin", "ls", "--type=recursive", "--names")
	if err != nil {
		t.Fatal(err)
	}
	pins := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line) // <cid> recursive [name]
		if len(f) >= 2 {
			pins[f[0]] = strings.Join(f[2:], " ")
		}
	}
	return pins
}

// kuboShardPins returns the CIDs of shard id's pins in the follower's pinset.
func kuboShardPins(t *testing.T, f *localcluster.Follower, id int64) []string {
	t.Helper()
	var out []string
	err := f.Daemon.Pins().ListShard(context.Background(), id, func(p pinset.Pin) error {
		out = append(out, p.CID.String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("shard %d has no pins", id)
	}
	return out
}
