package localcluster_test

import (
	"context"
	"crypto/rand"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"

	"github.com/pinfold/pinfold/audit"
	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/internal/testlog"
	"github.com/pinfold/pinfold/localcluster"
)

// auditedCluster starts a curator that audits every copy each second, 4
// paths at a time, with a short grace, and adds one 10 MiB file in one
// shard of replication 1.
func auditedCluster(t *testing.T) (*localcluster.Cluster, cid.Cid) {
	t.Helper()
	ctx := context.Background()
	cfg := configs.DefaultCurator()
	cfg.HeadInterval = configs.Duration(200 * time.Millisecond)
	cfg.ReplicationMin, cfg.ReplicationMax = 1, 1
	cfg.ShardTarget = 16 << 20
	cfg.Audit.Interval = configs.Duration(time.Second)
	cfg.Audit.Samples = 4
	cfg.Audit.Timeout = configs.Duration(2 * time.Second)
	cfg.Audit.Grace = configs.Duration(3 * time.Second)
	c, err := localcluster.Start(ctx, localcluster.Options{Dir: t.TempDir(), Curator: cfg, Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "data.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, 10<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	added, err := c.Curator.AddContent(ctx, curator.AddRequest{Path: filepath.Join(dir, "data.bin")})
	if err != nil || len(added) != 1 {
		t.Fatalf("add: %v %v", added, err)
	}
	root, err := cid.Decode(added[0].CID)
	if err != nil {
		t.Fatal(err)
	}
	return c, root
}

// provenHolder waits for the one shard to have a proven holder and
// returns its name and the shard.
func provenHolder(t *testing.T, c *localcluster.Cluster, not string) (string, curator.ShardInfo) {
	t.Helper()
	names := map[string]string{}
	var holder string
	var shard curator.ShardInfo
	waitFor(t, time.Minute, "a proven holder of the shard", func() bool {
		for name, f := range c.Followers() {
			names[f.Daemon.Status().Peer] = name
		}
		ss, err := c.Curator.Shards(context.Background())
		if err != nil || len(ss) != 1 {
			return false
		}
		for _, h := range ss[0].Holders {
			if h.Proven && h.Assigned && names[h.Peer] != not {
				holder, shard = names[h.Peer], ss[0]
				return true
			}
		}
		return false
	})
	return holder, shard
}

// memberAudits returns the audit record the curator derives for a peer.
func memberAudits(t *testing.T, c *localcluster.Cluster, p string) curator.MemberLoad {
	t.Helper()
	ms, err := c.Curator.MemberLoads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Peer == p {
			return m
		}
	}
	return curator.MemberLoad{}
}

// TestDeletedBlocksCaught: a holder deletes 10 % of the leaves of the
// shard it holds. Audits catch it within the number of rounds that gives
// a 1 - 1e-6 chance (the 99 % figure is logged), it is marked failing,
// the shard goes to the other follower, which fetches it from the curator
// and is proven, and the deleter's copy is never counted again.
func TestDeletedBlocksCaught(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, root := auditedCluster(t)
	for _, name := range []string{"a", "b"} {
		if _, err := c.AddFollower(ctx, name, localcluster.FollowerOptions{Pledge: pledge(64 << 20), OfferInterval: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	name, shard := provenHolder(t, c, "")
	deleter := c.Followers()[name]
	peerID := deleter.Daemon.Status().Peer

	// The leaves of the file's DAG, from the curator's copy.
	dagSvc := merkledag.NewDAGService(blockservice.New(c.Curator.Blocks(), nil))
	rootNode, err := dagSvc.Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	var leaves []cid.Cid
	for _, l := range rootNode.Links() {
		leaves = append(leaves, l.Cid)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := mrand.New(mrand.NewPCG(seed, 10))
	r.Shuffle(len(leaves), func(i, j int) { leaves[i], leaves[j] = leaves[j], leaves[i] })
	n := (len(leaves) + 9) / 10
	before := memberAudits(t, c, peerID).Audits
	for _, l := range leaves[:n] {
		if err := deleter.Daemon.Blocks().DeleteBlock(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	deletedAt, _ := c.Curator.Heads().Newest()
	frac := float64(n) / float64(len(leaves))
	p99, bound := audit.RoundsFor(frac, 4, 0.99), audit.RoundsFor(frac, 4, 1-1e-6)
	t.Logf("%s deleted %d of %d leaves (%.1f %%) of shard %d at head seq %d; rounds for 99 %%: %d, bound (1-1e-6): %d",
		name, n, len(leaves), 100*frac, shard.ID, deletedAt.Head.Seq, p99, bound)

	var caught curator.MemberLoad
	waitFor(t, 2*time.Minute, "the deleter's first failed audit", func() bool {
		caught = memberAudits(t, c, peerID)
		return caught.Audits.Fails > before.Fails
	})
	rounds := caught.Audits.Passes - before.Passes + 1
	t.Logf("caught in round %d: %s", rounds, caught.Audits.FailReason)
	if rounds > int64(bound) {
		t.Fatalf("caught after %d rounds, more than the bound %d", rounds, bound)
	}
	waitFor(t, 30*time.Second, "the deleter marked failing", func() bool {
		m := memberAudits(t, c, peerID)
		return m.Standing == curator.StandingFailing || m.Standing == curator.StandingExpelled
	})
	other, _ := provenHolder(t, c, name)
	moved, _ := c.Curator.Heads().Newest()
	t.Logf("shard %d proven by %s at head seq %d: %d heads after the deletion", shard.ID, other, moved.Head.Seq, moved.Head.Seq-deletedAt.Head.Seq)
	ss, err := c.Curator.Shards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range ss[0].Holders {
		if h.Peer == peerID && h.Proven {
			t.Fatalf("the deleter's copy still counts as proven: %+v", h)
		}
	}
}

// TestAuditFalseFailures measures how often honest holders fail audits
// while the cluster is busy: six followers fetch a 64 MiB archive and
// rebalance while every copy is audited each second (4 paths, 2 s
// timeout, 10 s grace). Set PINFOLD_AUDIT_MEASURE=1 to run it; it reports
// the audits run and the failures, which should be none.
func TestAuditFalseFailures(t *testing.T) {
	if os.Getenv("PINFOLD_AUDIT_MEASURE") == "" {
		t.Skip("measurement: set PINFOLD_AUDIT_MEASURE=1")
	}
	ctx := context.Background()
	opt := localcluster.DefaultDemo(t.TempDir(), testLog{t})
	opt.Files, opt.ArchiveSize, opt.ShardTarget = 200, 64<<20, 2<<20
	opt.Pledges, opt.Fourth = []int64{48 << 20, 64 << 20, 96 << 20}, 0
	opt.Timeout = 3 * time.Minute
	opt.Audit = func(a *configs.Audit) {
		a.Interval, a.Samples = configs.Duration(time.Second), 4
		a.Timeout, a.Grace = configs.Duration(2*time.Second), configs.Duration(10*time.Second)
	}
	c, _, err := localcluster.StartDemo(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, name := range []string{"d", "e", "f"} { // more fetching while audits run
		if _, err := c.AddFollower(ctx, name, localcluster.FollowerOptions{Pledge: pledge(48 << 20), OfferInterval: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Minute) // the measurement window, not a synchronisation
	st := c.Curator.AuditStats()
	ms, err := c.Curator.MemberLoads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var passes, fails int64
	for _, m := range ms {
		passes += m.Audits.Passes
		fails += m.Audits.Fails
		if m.Audits.Fails > 0 {
			t.Logf("%s failed: %s", m.Nickname, m.Audits.FailReason)
		}
	}
	t.Logf("audits recorded: %d passed, %d failed; attempts %d, retried without an answer %d, answer bytes %d",
		passes, fails, st.Attempts, st.Retried, st.BytesIn)
	if fails > 0 {
		t.Errorf("%d honest audits failed", fails)
	}
}

// TestCuratorShardsByStatus: the curator's shards_by_status gauge counts
// the one shard below its minimum while nobody holds it, and at its
// target once a follower's copy has passed an audit.
func TestCuratorShardsByStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := auditedCluster(t)
	byStatus := func() map[string]float64 {
		fams, err := c.Curator.Metrics().Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, f := range fams {
			if f.GetName() != "pinfold_curator_shards_by_status" {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "status" {
						out[l.GetValue()] = m.GetGauge().GetValue()
					}
				}
			}
		}
		return out
	}
	waitFor(t, 20*time.Second, "the shard counted below its minimum", func() bool {
		m := byStatus()
		return m[curator.ShardBelowMin] == 1 && m[curator.ShardAtTarget] == 0 && len(m) == 4
	})
	if _, err := c.AddFollower(ctx, "a", localcluster.FollowerOptions{Pledge: pledge(64 << 20), OfferInterval: time.Second}); err != nil {
		t.Fatal(err)
	}
	provenHolder(t, c, "")
	waitFor(t, 20*time.Second, "the shard counted at its target", func() bool {
		m := byStatus()
		return m[curator.ShardAtTarget] == 1 && m[curator.ShardBelowMin] == 0
	})
}
