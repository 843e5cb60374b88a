package localcluster_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/localcluster"
)

// TestSecondCurator: a second curator joins, is added to the trust set by
// a signed head, pins added at either curator appear everywhere, each
// publishes heads with its own key, and once removed it can sign nothing.
func TestSecondCurator(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t)
	cfg := configs.DefaultCurator()
	cfg.Listen, cfg.API = []string{"/ip4/127.0.0.1/tcp/0"}, "127.0.0.1:0"
	cfg.HeadInterval = configs.Duration(200 * time.Millisecond)
	home2 := curator.Home{Dir: filepath.Join(t.TempDir(), "second")}
	id2, err := home2.Join(curator.JoinOptions{Cluster: c.Config, Config: cfg, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := curator.OpenDaemon(ctx, home2, curator.DaemonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d2.Run(rctx) }() // ends with rctx
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("second curator: %v", err)
		}
		if err := d2.Close(); err != nil {
			t.Errorf("close second curator: %v", err)
		}
	}()
	f1, err := c.AddFollower(ctx, "f1", localcluster.FollowerOptions{Pledge: pledge(1 << 30)})
	if err != nil {
		t.Fatal(err)
	}

	// Before it is trusted, the second curator cannot publish.
	waitFor(t, 30*time.Second, "the second curator to verify a head", func() bool { _, ok := d2.Heads().Newest(); return ok })
	if _, err := d2.PublishNow(ctx, true); err == nil {
		t.Fatal("an untrusted curator published a head")
	}
	if err := c.Curator.ChangeTrust(ctx, curator.TrustChange{Add: []peer.ID{id2}}); err != nil {
		t.Fatal(err)
	}
	trusted := func(d *curator.Daemon, id peer.ID) bool {
		v, ok := d.Heads().Newest()
		if !ok {
			return false
		}
		for _, k := range v.Head.Trust {
			if peer.ID(k) == id {
				return true
			}
		}
		return false
	}
	waitFor(t, 30*time.Second, "the second curator to see itself trusted", func() bool { return trusted(d2, id2) })

	if _, err := d2.AddPins(ctx, fakePins(t, 0, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Curator.AddPins(ctx, fakePins(t, 100, 100)); err != nil {
		t.Fatal(err)
	}
	for name, pins := range map[string]func() int64{
		"first curator":  func() int64 { return c.Curator.Pins().Stats().Pins },
		"second curator": func() int64 { return d2.Pins().Stats().Pins },
		"follower":       func() int64 { return f1.Daemon.Pins().Stats().Pins },
	} {
		waitFor(t, 60*time.Second, name+" to hold the 200 pins of both curators", func() bool { return pins() == 200 })
	}
	// Both curators sign heads of the chain. Two curators publishing from
	// the same parent race, and one head is dropped (section 7 of the
	// protocol), so the second curator's heads so far may all have lost.
	// Once both are on the same newest head, a head the second forces wins
	// unless the first publishes at that very moment: then try again.
	signers := func() map[peer.ID]bool {
		out := map[peer.ID]bool{}
		v, _ := c.Curator.Heads().Newest()
		st := dag.NewStore(c.CuratorStore())
		for at := &v.CID; at != nil; {
			sh, err := st.SignedHead(ctx, *at)
			if err != nil {
				t.Fatalf("walk the first curator's chain at %s: %v", at, err)
			}
			out[peer.ID(sh.Sig.Signer)] = true
			at = sh.Head.Parent
		}
		return out
	}
	for try := 0; !signers()[id2]; try++ {
		if try == 10 {
			t.Fatal("no head of the second curator reached the first curator's chain in 10 tries")
		}
		waitFor(t, 30*time.Second, "both curators on the same newest head", func() bool {
			v1, ok1 := c.Curator.Heads().Newest()
			v2, ok2 := d2.Heads().Newest()
			return ok1 && ok2 && v1.CID.Equals(v2.CID)
		})
		if _, err := d2.PublishNow(ctx, true); errors.Is(err, curator.ErrHeadLost) {
			continue // the first curator published at the same moment
		} else if err != nil {
			t.Fatal(err)
		}
		mine, _ := d2.Heads().Newest()
		waitFor(t, 30*time.Second, "the first curator to settle the second curator's head", func() bool {
			v, ok := c.Curator.Heads().Newest()
			return ok && v.Head.Seq >= mine.Head.Seq
		})
	}
	if s := signers(); len(s) != 2 {
		t.Fatalf("the chain has heads of %d signers, want 2: %v", len(s), s)
	}

	// Removed again, it can sign nothing: its own daemon refuses, and the
	// follower keeps following the first curator.
	if err := c.Curator.ChangeTrust(ctx, curator.TrustChange{Remove: []peer.ID{id2}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the second curator to see its removal", func() bool { v, ok := d2.Heads().Newest(); return ok && !trusted(d2, id2) && v.Head.Seq > 0 })
	if _, err := d2.PublishNow(ctx, true); err == nil {
		t.Fatal("a removed curator published a head")
	}
	removedAt, _ := c.Curator.Heads().Newest()
	waitFor(t, 30*time.Second, "the follower to verify the removal", func() bool {
		s := f1.Daemon.Status()
		return s.Head != nil && s.Head.Seq >= removedAt.Head.Seq
	})
}
