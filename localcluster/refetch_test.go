package localcluster_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/internal/testlog"
	"github.com/pinfold/pinfold/localcluster"
	"github.com/pinfold/pinfold/publish"
	"github.com/pinfold/pinfold/trust"
)

// writeFiles writes n files of size random bytes into a new folder and
// returns it.
func writeFiles(t *testing.T, prefix string, n, size int) string {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.bin", prefix, i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(f, rand.Reader, int64(size)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// provenAt waits until shard id has n proven holders whose ACKs cover the
// shard's present content and it lists pins pins.
func provenAt(t *testing.T, c *localcluster.Cluster, id, pins int64, n int, what string) curator.ShardInfo {
	t.Helper()
	var got curator.ShardInfo
	waitFor(t, time.Minute, what, func() bool {
		ss, err := c.Curator.Shards(context.Background())
		if err != nil {
			return false
		}
		for _, s := range ss {
			if s.ID != id {
				continue
			}
			current := 0
			for _, h := range s.Holders {
				if h.State == "stored" && h.Current && h.Recorded && h.Proven {
					current++
				}
			}
			got = s
			return s.Pins == pins && current >= n
		}
		return false
	})
	return got
}

// TestShardRefetchedWhenItChanges: with the plain defaults (no shard
// target), the pins of one import fill one shard that both followers
// store. Pins added later go to the same shard: each follower fetches the
// new pins and ACKs the new digest, and audits prove it. A pin removed
// from the shard is released from the followers' stores once they ACKed
// the shard without it.
func TestShardRefetchedWhenItChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end with real hosts: skipped with -short")
	}
	t.Parallel()
	ctx := context.Background()
	cfg := configs.DefaultCurator() // shard_target 0: the default
	cfg.HeadInterval = configs.Duration(200 * time.Millisecond)
	cfg.Audit.Interval = configs.Duration(time.Second)
	cfg.Audit.Samples = 2
	cfg.Audit.Timeout = configs.Duration(2 * time.Second)
	cfg.Audit.Grace = configs.Duration(3 * time.Second)
	c, err := localcluster.Start(ctx, localcluster.Options{Dir: t.TempDir(), Curator: cfg, Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	first, err := c.Curator.AddContent(ctx, curator.AddRequest{Path: writeFiles(t, "a", 3, 200<<10), Each: true})
	if err != nil || len(first) != 3 {
		t.Fatalf("add: %v, %v", first, err)
	}
	for _, name := range []string{"ann", "bob"} {
		if _, err := c.AddFollower(ctx, name, localcluster.FollowerOptions{
			Pledge: pledge(64 << 20), Nickname: name, OfferInterval: time.Second, AckInterval: 5 * time.Second,
		}); err != nil {
			t.Fatal(err)
		}
	}
	before := provenAt(t, c, 0, 3, 2, "both followers to hold shard 0 proven")

	// More pins: the newest shard (0, far below its 1 GiB target) grows.
	more, err := c.Curator.AddContent(ctx, curator.AddRequest{Path: writeFiles(t, "b", 2, 150<<10), Each: true})
	if err != nil || len(more) != 2 {
		t.Fatalf("add more: %v, %v", more, err)
	}
	grown := provenAt(t, c, 0, 5, 2, "both followers to hold the grown shard 0, ACKed at its new digest and proven")
	if grown.Bytes <= before.Bytes {
		t.Fatalf("shard 0 did not grow: %d bytes, then %d", before.Bytes, grown.Bytes)
	}
	for name, f := range c.Followers() {
		for _, p := range more {
			root, err := cid.Decode(p.CID)
			if err != nil {
				t.Fatal(err)
			}
			if has, err := f.Daemon.Blocks().Has(ctx, root); err != nil || !has {
				t.Fatalf("%s lacks the added pin %s (%v)", name, root, err)
			}
		}
	}

	// One pin leaves the shard: it is released once the new digest is ACKed.
	gone, err := cid.Decode(first[0].CID)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Curator.Pins().Remove(ctx, []cid.Cid{gone}); err != nil || n != 1 {
		t.Fatalf("remove: %d, %v", n, err)
	}
	provenAt(t, c, 0, 4, 2, "both followers to ACK shard 0 without the removed pin")
	for name, f := range c.Followers() {
		waitFor(t, 30*time.Second, name+" to release the removed pin", func() bool {
			has, err := f.Daemon.Blocks().Has(ctx, gone)
			return err == nil && !has
		})
	}
}

// TestNoACKBeforeThePinsetHoldsTheShard: a head (validly signed, but not
// made from its CRDT heads) lists pins in a shard that the follower's
// pinset does not hold. The follower neither stores nor ACKs the shard:
// it says it waits for the pinset.
func TestNoACKBeforeThePinsetHoldsTheShard(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end with real hosts: skipped with -short")
	}
	t.Parallel()
	ctx := context.Background()
	cfg := configs.DefaultCurator()
	cfg.HeadInterval = configs.Duration(time.Hour) // one head once the member joins, then none
	cfg.ReplicationMin, cfg.ReplicationMax = 1, 1
	c, err := localcluster.Start(ctx, localcluster.Options{Dir: t.TempDir(), Curator: cfg, Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f, err := c.AddFollower(ctx, "ann", localcluster.FollowerOptions{Pledge: pledge(64 << 20), OfferInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a head listing the follower, which it verified", func() bool {
		n, err := c.Curator.HeadMembers(ctx)
		v, _ := c.Curator.Heads().Newest()
		s := f.Daemon.Status()
		return err == nil && n == 1 && s.Head != nil && s.Head.CID == v.CID.String()
	})

	// The curator's key signs a head whose shard list claims 5 pins that
	// no CRDT head holds.
	signHeadFor(t, c, f, func(st *dag.State) {
		st.Pinset = dag.Pinset{Pins: 5, Bytes: 1 << 20}
		st.Shards = []dag.Shard{{ID: 0, Bytes: 1 << 20, Pins: 5}}
	})
	var row follower.ShardStatus
	waitFor(t, 30*time.Second, "the follower to say it waits for the pinset", func() bool {
		for _, r := range f.Daemon.Status().Shards {
			if r.ID == 0 {
				row = r
				return strings.Contains(r.Error, "waiting for the pinset")
			}
		}
		return false
	})
	if row.State == follower.ShardStored || row.AckedSeq >= 0 {
		t.Fatalf("shard 0 is %s, ACKed at seq %d, with no pin of it in the pinset", row.State, row.AckedSeq)
	}
	if s := f.Daemon.Status(); s.AcksPending != 0 || s.Stored != 0 {
		t.Fatalf("the follower queued %d ACKs and stores %d bytes", s.AcksPending, s.Stored)
	}
	t.Logf("shard 0: %s", row.Error)

	// A head whose parameters cannot allocate (as clusters made before the
	// shard target had a default were left with): the follower says why
	// in its status.
	signHeadFor(t, c, f, func(st *dag.State) { st.Allocation.Params.ShardTarget = 0 })
	waitFor(t, 30*time.Second, "the follower to say why it cannot compute its shards", func() bool {
		why := f.Daemon.Status().Why
		return strings.Contains(why, "cannot compute") && strings.Contains(why, "shard_target")
	})
	t.Logf("why: %s", f.Daemon.Status().Why)
}

// signHeadFor signs with the curator's key a head on top of the newest
// one, with its state changed by edit, and has follower f consider it.
func signHeadFor(t *testing.T, c *localcluster.Cluster, f *localcluster.Follower, edit func(*dag.State)) {
	t.Helper()
	ctx := context.Background()
	l, err := c.Home.Load()
	if err != nil {
		t.Fatal(err)
	}
	v, _ := f.Daemon.Heads().Newest()
	st := dag.NewStore(c.CuratorStore())
	state := dag.State{}
	for m, err := range st.Members(ctx, v.Head.Members) {
		if err != nil {
			t.Fatal(err)
		}
		state.Members = append(state.Members, m)
	}
	if state.Allocation, err = st.Allocation(ctx, v.Head.Allocation); err != nil {
		t.Fatal(err)
	}
	state.Allocation.Log = nil
	edit(&state)
	head := dag.Head{Version: dag.Version, Cluster: v.Head.Cluster, Seq: v.Head.Seq + 1, Parent: &v.CID, Time: v.Head.Time + 1, Trust: v.Head.Trust}
	head, _, err = st.BuildHead(ctx, head, state)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := trust.SignHead(l.CuratorKey, head)
	if err != nil {
		t.Fatal(err)
	}
	data, err := dag.EncodeSignedHead(signed)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := publish.BuildRecord(l.ClusterKey, dag.CID(data), uint64(head.Seq), time.Now(), publish.RecordConfig{
		Validity: time.Duration(l.Config.RecordValidity), TTL: time.Duration(l.Config.RecordTTL)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.Daemon.Heads().Consider(ctx, headsync.Announcement{Head: data, Record: rec.Raw}, headsync.FromLocal, c.Curator.Node().ID())
	if err != nil || out != headsync.Adopted {
		t.Fatalf("the follower did not adopt the head: %v, %v", out, err)
	}
}

// TestPlainInitTimings measures, on a cluster made with no shard target
// (the defaults but a 1 s head interval), the time from starting two
// followers to the curator's first current stored ACK and to every shard
// ACKed by its minimum of holders. In-process, not the real binaries.
// Set PINFOLD_MEASURE=1 to run it.
func TestPlainInitTimings(t *testing.T) {
	if os.Getenv("PINFOLD_MEASURE") == "" {
		t.Skip("set PINFOLD_MEASURE=1 to measure")
	}
	ctx := context.Background()
	cfg := configs.DefaultCurator()
	cfg.HeadInterval = configs.Duration(time.Second)
	c, err := localcluster.Start(ctx, localcluster.Options{Dir: t.TempDir(), Curator: cfg, Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Curator.AddContent(ctx, curator.AddRequest{Path: writeFiles(t, "f", 40, 256<<10), Each: true}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for _, name := range []string{"ann", "bob"} {
		if _, err := c.AddFollower(ctx, name, localcluster.FollowerOptions{Pledge: pledge(1 << 30), Nickname: name}); err != nil {
			t.Fatal(err)
		}
	}
	var first time.Duration
	var shards int
	waitFor(t, 5*time.Minute, "every shard ACKed by its minimum", func() bool {
		ss, err := c.Curator.Shards(ctx)
		if err != nil || len(ss) == 0 {
			return false
		}
		all := true
		for _, s := range ss {
			if s.Acked > 0 && first == 0 {
				first = time.Since(began)
			}
			all = all && s.Acked >= s.Min
		}
		shards = len(ss)
		return all
	})
	t.Logf("%d shard(s), 10 MiB, two followers: first ACK after %s, every shard ACKed after %s",
		shards, first.Round(100*time.Millisecond), time.Since(began).Round(100*time.Millisecond))
}
