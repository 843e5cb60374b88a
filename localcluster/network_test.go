package localcluster_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/internal/testlog"
	"github.com/pinfold/pinfold/localcluster"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/pinset"
	"github.com/pinfold/pinfold/trust"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakePins returns n pins with distinct raw CIDs.
func fakePins(t *testing.T, from, n int) []curator.PinRequest {
	t.Helper()
	out := make([]curator.PinRequest, 0, n)
	for i := from; i < from+n; i++ {
		c := dag.CID([]byte(fmt.Sprintf("pin %d", i))) // any valid CID will do as a pin
		out = append(out, curator.PinRequest{CID: c.String(), Name: fmt.Sprintf("file-%d", i), Size: int64(1000 + i)})
	}
	return out
}

func startCluster(t *testing.T) *localcluster.Cluster {
	t.Helper()
	cfg := configs.DefaultCurator()
	cfg.HeadInterval = configs.Duration(200 * time.Millisecond)
	c, err := localcluster.Start(context.Background(), localcluster.Options{Dir: t.TempDir(), Curator: cfg, Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
	})
	return c
}

func caughtUpTo(f *localcluster.Follower, c *localcluster.Cluster, pins int64) func() bool {
	return func() bool {
		want, ok := c.Curator.Heads().Newest()
		s := f.Daemon.Status()
		return ok && s.Head != nil && s.Head.CID == want.CID.String() && s.Pinset.CaughtUp && s.Pinset.Pins == pins
	}
}

func TestPinsetReachesFollowers(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t)
	pledge := configs.Pledge{Bytes: 1 << 30}
	f1, err := c.AddFollower(ctx, "f1", localcluster.FollowerOptions{Pledge: pledge, Nickname: "one"})
	if err != nil {
		t.Fatal(err)
	}
	f2, err := c.AddFollower(ctx, "f2", localcluster.FollowerOptions{Pledge: pledge, Nickname: "two"})
	if err != nil {
		t.Fatal(err)
	}
	pins := fakePins(t, 0, 10_000)
	res, err := c.Curator.AddPins(ctx, pins)
	if err != nil || res.Added != 10_000 {
		t.Fatalf("add pins: %+v %v", res, err)
	}
	// Adding the same pins again changes nothing.
	if res, err := c.Curator.AddPins(ctx, pins[:100]); err != nil || res.Added != 0 || res.Present != 100 {
		t.Fatalf("re-add: %+v %v", res, err)
	}
	for _, f := range []*localcluster.Follower{f1, f2} {
		waitFor(t, 60*time.Second, f.Name+" to hold the 10,000 pins of the newest head", caughtUpTo(f, c, 10_000))
	}
	// Both followers became members through their signed offers.
	waitFor(t, 30*time.Second, "two active members", func() bool { return c.Curator.Status().Members == 2 })

	// A follower sees the same pins as the curator, in the same shards.
	var got, want []string
	collect := func(dst *[]string) func(p pinsetPin) error {
		return func(p pinsetPin) error {
			*dst = append(*dst, fmt.Sprintf("%s/%d/%d", p.CID, p.Shard, p.Size))
			return nil
		}
	}
	if err := f1.Daemon.Pins().List(ctx, collect(&got)); err != nil {
		t.Fatal(err)
	}
	if err := c.Curator.Pins().List(ctx, collect(&want)); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) != 10_000 {
		t.Fatalf("follower lists %d pins, curator %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("pin %d differs: follower %s, curator %s", i, got[i], want[i])
		}
	}
}

func TestForgedAndReplayedHeadsRejected(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t)
	f1, err := c.AddFollower(ctx, "f1", localcluster.FollowerOptions{Pledge: configs.Pledge{Bytes: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Curator.AddPins(ctx, fakePins(t, 0, 10)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "f1 to catch up", caughtUpTo(f1, c, 10))
	newest, _ := c.Curator.Heads().Newest()

	// A rogue peer connected to f1 publishes on the heads topic.
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p2p.DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	for _, a := range f1.Daemon.Node().Addrs() {
		cfg.Bootstrap = append(cfg.Bootstrap, a.String())
	}
	cfg.Blockstore = newMemBlockstore()
	rogue, err := p2p.New(key, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = rogue.Run(rctx) }() // ends with rctx
	topic, err := rogue.JoinTopic(c.Config.Topics.Heads, func(context.Context, *pubsub.Message) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer topic.Close()
	waitFor(t, 30*time.Second, "the rogue to join f1's heads topic mesh", func() bool { return len(topic.Peers()) > 0 })

	// 1. A head chained on the newest one but signed by a key outside the trust set.
	forged := newest.Head
	forged.Seq++
	forged.Parent = &newest.CID
	sh, err := trust.SignHead(key, forged)
	if err != nil {
		t.Fatal(err)
	}
	publishAnn(t, ctx, topic, sh)
	// 2. The genesis head: validly signed, but older than the newest.
	checkpoint, _ := c.Curator.Heads().Newest()
	genesisCID, err := cid.Decode(c.Config.Checkpoint.Head)
	if err != nil {
		t.Fatal(err)
	}
	genesis, err := c.Curator.Node().BlockService().GetBlock(ctx, genesisCID)
	if err != nil {
		t.Fatal(err)
	}
	if err := topic.Publish(ctx, mustEncode(t, headsync.Announcement{Head: genesis.RawData()})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "f1 to reject the forged and the replayed head", func() bool {
		r := f1.Daemon.Status().Rejected
		return r[trust.ErrUntrustedSigner.Error()] >= 1 && r[trust.ErrStaleSeq.Error()] >= 1
	})
	// f1 follows the curator's heads only: never the forged one, never back to genesis.
	s := f1.Daemon.Status()
	forgedData, err := dag.EncodeSignedHead(sh)
	if err != nil {
		t.Fatal(err)
	}
	curatorID := c.Curator.Status().Peer
	if s.Head == nil || s.Head.Signer != curatorID || s.Head.CID == dag.CID(forgedData).String() || s.Head.Seq < checkpoint.Head.Seq {
		t.Fatalf("f1's newest head is %+v; want one signed by the curator %s, at seq >= %d", s.Head, curatorID, checkpoint.Head.Seq)
	}
}

func publishAnn(t *testing.T, ctx context.Context, topic *p2p.Topic, sh dag.SignedHead) {
	t.Helper()
	data, err := dag.EncodeSignedHead(sh)
	if err != nil {
		t.Fatal(err)
	}
	if err := topic.Publish(ctx, mustEncode(t, headsync.Announcement{Head: data})); err != nil {
		t.Fatal(err)
	}
}

func mustEncode(t *testing.T, a headsync.Announcement) []byte {
	t.Helper()
	b, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFollowerRestartResumes(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t)
	f2, err := c.AddFollower(ctx, "f2", localcluster.FollowerOptions{Pledge: configs.Pledge{Bytes: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Curator.AddPins(ctx, fakePins(t, 0, 5_000)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "f2 to catch up", caughtUpTo(f2, c, 5_000))
	if err := c.StopFollower("f2"); err != nil {
		t.Fatal(err)
	}
	// The cluster moves on while f2 is down.
	if _, err := c.Curator.AddPins(ctx, fakePins(t, 5_000, 100)); err != nil {
		t.Fatal(err)
	}
	f2, err = c.AddFollower(ctx, "f2", localcluster.FollowerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "restarted f2 to catch up", caughtUpTo(f2, c, 5_100))
	if applied := f2.Daemon.Pins().Stats().KeysApplied; applied > 100 {
		t.Fatalf("restarted follower applied %d CRDT keys; it should only fetch the 100 new pins", applied)
	}
}

type pinsetPin = pinset.Pin

func newMemBlockstore() blockstore.Blockstore {
	return blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
}
