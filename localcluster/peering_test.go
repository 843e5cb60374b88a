package localcluster_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/localcluster"
	"github.com/pinfold/pinfold/publish"
	"github.com/pinfold/pinfold/tui"
)

// TestFollowersCatchUpWithoutCurator: followers keep connections to each
// other (addresses from the cluster DHT), so with the curator killed
// a new pin already in the pinset reaches a follower that was offline
// when it was added, from the other follower, and so does content only
// the other follower holds; and the status of the
// follower without a curator says so instead of "caught up".
func TestFollowersCatchUpWithoutCurator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := startCluster(t)
	opt := localcluster.FollowerOptions{Pledge: configs.Pledge{Bytes: 1 << 30}, OfferInterval: 300 * time.Millisecond}
	f1, err := c.AddFollower(ctx, "f1", opt)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := c.AddFollower(ctx, "f2", opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Curator.AddPins(ctx, fakePins(t, 0, 100)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*localcluster.Follower{f1, f2} {
		waitFor(t, 30*time.Second, f.Name+" to catch up", caughtUpTo(f, c, 100))
	}
	if s := f1.Daemon.Status(); s.Pinset.NoCuratorSince != nil {
		t.Fatalf("f1's status says no curator is reachable while the curator runs: %+v", s.Pinset)
	}
	id2 := f2.Daemon.Node().ID()
	waitFor(t, 30*time.Second, "f1 to keep a connection to f2, found in the cluster DHT", func() bool {
		return f1.Daemon.Node().ConnectedTo(id2) && slicesHas(f1.Daemon.Node().Members(), id2)
	})
	// Followers publish offers but do not subscribe to them (with the
	// cluster DHT on they need no one's addresses from them), so they do
	// not receive and relay every member's offer: the curator sees no
	// follower on the offers topic, and still has both followers' offers.
	ps := c.Curator.Node().PubSub()
	for _, topic := range ps.GetTopics() {
		if strings.HasSuffix(topic, "/offers") {
			if peers := ps.ListPeers(topic); len(peers) != 0 {
				t.Fatalf("peers subscribed to the offers topic, as the curator sees them: %v; want none", peers)
			}
		}
	}
	if st := c.Curator.Status(); st.Members != 2 {
		t.Fatalf("the curator admitted %d members from their offers, want 2", st.Members)
	}

	// f2 goes offline; the curator adds pins; f1 gets them; the curator dies.
	if err := c.StopFollower("f2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Curator.AddPins(ctx, fakePins(t, 100, 10)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "f1 to get the new pins", caughtUpTo(f1, c, 110))
	if err := c.StopCurator(); err != nil {
		t.Fatal(err)
	}
	// f1's head, not the curator's newest read before it stopped: the
	// curator may publish once more (recording f1's ACKs) while stopping.
	newest := f1.Daemon.Status().Head

	// f2 comes back: it finds f1 and catches up from it.
	began := time.Now()
	f2, err = c.AddFollower(ctx, "f2", opt)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "f2 to catch up from f1", func() bool {
		s := f2.Daemon.Status()
		return s.Head != nil && s.Head.CID == newest.CID && s.Pinset.CaughtUp && s.Pinset.Pins == 110
	})
	t.Logf("f2 caught up from f1 %s after its restart, with the curator gone", time.Since(began).Round(time.Millisecond))
	s := f2.Daemon.Status()
	if s.Pinset.NoCuratorSince == nil {
		t.Fatalf("f2's status does not say that no curator is reachable: %+v", s.Pinset)
	}
	if got := tui.PinsetState(s.Pinset); strings.Contains(got, "caught up") || !strings.Contains(got, "no curator reachable since") {
		t.Fatalf("f2's pinset state reads %q with no curator reachable", got)
	}

	// Content too: a block only f1 holds reaches f2 over bitswap, from
	// the connection the members keep, with the curator gone.
	blk := merkledag.NewRawNode([]byte("a block held only by f1"))
	if err := f1.Daemon.Blocks().Put(ctx, blk); err != nil {
		t.Fatal(err)
	}
	if has, _ := f2.Daemon.Blocks().Has(ctx, blk.Cid()); has {
		t.Fatal("f2 holds the block before fetching it")
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	got, err := f2.Daemon.Node().DAGService().Get(fctx, blk.Cid())
	if err != nil {
		t.Fatalf("f2 fetching a block from f1, the curator gone: %v", err)
	}
	if string(got.RawData()) != string(blk.RawData()) {
		t.Fatalf("f2 got %q from f1", got.RawData())
	}
}

func slicesHas(list []peer.AddrInfo, id peer.ID) bool {
	for _, ai := range list {
		if ai.ID == id {
			return true
		}
	}
	return false
}

// TestRecordFileWithOneMember: a new follower that knows one member (not
// the curator, which is gone) and has the cluster's IPNS record in a file
// (follow run --record) catches up within seconds: the record does not
// hold up the start, and it is kept.
func TestRecordFileWithOneMember(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := startCluster(t)
	f1, err := c.AddFollower(ctx, "f1", localcluster.FollowerOptions{Pledge: configs.Pledge{Bytes: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Curator.AddPins(ctx, fakePins(t, 0, 100)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "f1 to catch up", caughtUpTo(f1, c, 100))
	newest, _ := c.Curator.Heads().Newest()
	waitFor(t, 30*time.Second, "the curator's record of its newest head", func() bool {
		r, ok := c.Curator.Heads().Record()
		return ok && r.Seq == uint64(newest.Head.Seq)
	})
	rec, _ := c.Curator.Heads().Record()
	path := filepath.Join(t.TempDir(), "cluster.ipns-record")
	if err := publish.WriteRecordFile(path, rec.Raw); err != nil {
		t.Fatal(err)
	}
	if err := c.StopCurator(); err != nil {
		t.Fatal(err)
	}
	f1Head := f1.Daemon.Status().Head // the curator may have published after newest while stopping
	var boot []string
	for _, a := range f1.Daemon.Node().Addrs() {
		boot = append(boot, a.String())
	}
	began := time.Now()
	f3, err := c.AddFollower(ctx, "f3", localcluster.FollowerOptions{Pledge: configs.Pledge{Bytes: 1 << 30}, Bootstrap: boot, RecordFile: path})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "f3 to catch up from f1 with the record file", func() bool {
		s := f3.Daemon.Status()
		return s.Head != nil && s.Head.CID == f1Head.CID && s.Pinset.CaughtUp && s.Pinset.Pins == 100 &&
			s.Record != nil && s.Record.Seq >= rec.Seq
	})
	t.Logf("f3 caught up %s after it was opened, with a record file and one reachable member", time.Since(began).Round(time.Millisecond))
}
