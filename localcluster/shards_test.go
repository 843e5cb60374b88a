package localcluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/localcluster"
	"github.com/pinfold/pinfold/trust"
)

// TestShardsEndToEnd runs the demo scenario on a small archive and checks
// what the issue asks: every shard reaches its ACKed holders; no follower
// stores more than it pledged; the signed heads' logs hold every ACK with
// a valid signature; a fourth follower takes data over without any shard
// falling below its minimum; and a follower too small for any shard gets
// nothing and says why.
func TestShardsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end with real hosts: skipped with -short")
	}
	ctx := context.Background()
	opt := localcluster.DefaultDemo(t.TempDir(), testLog{t})
	opt.Files, opt.ArchiveSize, opt.ShardTarget = 120, 16<<20, 1<<20
	opt.Pledges, opt.Fourth = []int64{8 << 20, 12 << 20, 20 << 20}, 0
	opt.Timeout = 3 * time.Minute
	c, shards, err := localcluster.StartDemo(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, s := range shards {
		if s.Proven < s.Max {
			t.Fatalf("shard %d has %d proven holders (%d ACKed), want %d", s.ID, s.Proven, s.Acked, s.Max)
		}
	}
	for name, f := range c.Followers() {
		s := f.Daemon.Status()
		if s.Stored > s.Pledged {
			t.Fatalf("%s stores %d bytes, over its pledge of %d", name, s.Stored, s.Pledged)
		}
	}
	checkLogs(t, ctx, c, shards)
	checkHolders(t, ctx, c, shards)

	// A fourth follower joins; check continuously that no shard drops
	// below its minimum while data moves.
	stop := make(chan struct{})
	violations := make(chan string, 1)
	go func() { // owned by this test: ends when stop is closed
		for {
			select {
			case <-stop:
				close(violations)
				return
			case <-time.After(50 * time.Millisecond):
			}
			ss, err := c.Curator.Shards(ctx)
			if err != nil {
				continue
			}
			for _, s := range ss {
				if s.Proven < s.Min {
					select {
					case violations <- "shard below min during the move":
					default:
					}
				}
			}
		}
	}()
	if _, err := c.AddFollower(ctx, "dave", localcluster.FollowerOptions{
		Pledge: pledge(16 << 20), Nickname: "dave", OfferInterval: time.Second, AckInterval: 5 * time.Second,
	}); err != nil {
		t.Fatal(err)
	}
	after, err := localcluster.WaitSettled(ctx, c, 4, 3*time.Minute, t.Logf)
	close(stop)
	if v, ok := <-violations; ok {
		t.Fatal(v)
	}
	if err != nil {
		t.Fatal(err)
	}
	dave := 0
	for _, s := range after {
		for _, h := range s.Holders {
			if h.Nickname == "dave" && h.State == "stored" && h.Current {
				dave++
			}
		}
	}
	if dave == 0 {
		t.Fatal("the fourth follower holds no shard after the rebalance")
	}

	// A follower whose pledge is smaller than any shard gets nothing, and says why.
	tiny, err := c.AddFollower(ctx, "tiny", localcluster.FollowerOptions{Pledge: pledge(100 << 10), Nickname: "tiny", OfferInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the tiny follower to explain its empty assignment", func() bool {
		s := tiny.Daemon.Status()
		return len(s.Shards) == 0 && s.Head != nil && s.Why != "" && s.Why != "not a member yet: waiting for a curator to admit this follower's offer"
	})
	t.Logf("tiny follower: %s", tiny.Daemon.Status().Why)
}

// checkLogs walks the signed heads back from the newest and checks that
// every current stored ACK the curator counts is in some head's log, with
// a valid signature.
func checkLogs(t *testing.T, ctx context.Context, c *localcluster.Cluster, shards []curator.ShardInfo) {
	t.Helper()
	cluster := c.ClusterPeer()
	logged := map[string]bool{}
	eachLogEntry(t, ctx, c, func(seq int64, e dag.LogEntry) {
		if e.Audit != nil {
			if err := trust.VerifyLoggedAudit(cluster, *e.Audit); err != nil {
				t.Fatalf("log of head seq %d holds an audit that does not verify: %v", seq, err)
			}
			return
		}
		raw, err := dag.EncodeSignedAck(*e.Ack)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := trust.VerifyAck(cluster, raw); err != nil {
			t.Fatalf("log of head seq %d holds an ACK that does not verify: %v", seq, err)
		}
		logged[ackKey(e.Ack.Ack.Peer, e.Ack.Ack.Shard)] = true
	})
	for _, s := range shards {
		for _, h := range s.Holders {
			if h.State == "stored" && h.Current && !logged[ackKeyString(h.Peer, s.ID)] {
				t.Fatalf("ACK of shard %d by %s is not in any signed head's log", s.ID, h.Peer)
			}
		}
	}
}

// eachLogEntry calls fn with every entry of the log of every head from
// the curator's newest back to genesis, with the seq of the head.
func eachLogEntry(t *testing.T, ctx context.Context, c *localcluster.Cluster, fn func(seq int64, e dag.LogEntry)) {
	t.Helper()
	v, _ := c.Curator.Heads().Newest()
	st := dag.NewStore(c.CuratorStore())
	for at := &v.CID; at != nil; {
		sh, err := st.SignedHead(ctx, *at)
		if err != nil {
			t.Fatal(err)
		}
		a, err := st.Allocation(ctx, sh.Head.Allocation)
		if err != nil {
			t.Fatal(err)
		}
		if a.Log != nil {
			for e, err := range st.Log(ctx, *a.Log) {
				if err != nil {
					t.Fatal(err)
				}
				fn(sh.Head.Seq, e)
			}
		}
		at = sh.Head.Parent
	}
}

func ackKey(p []byte, shard int64) string { return ackKeyString(peer.ID(p).String(), shard) }

func ackKeyString(p string, shard int64) string { return fmt.Sprintf("%s/%d", p, shard) }

func pledge(n int64) configs.Pledge { return configs.Pledge{Bytes: configs.Size(n)} }

// testLog writes each line it is given to the test log: progress shows
// with -v and on failure.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
