package localcluster_test

import (
	"context"
	"crypto/rand"
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
	// Both curators signed heads of the chain.
	signers := map[peer.ID]bool{}
	waitFor(t, 30*time.Second, "heads signed by both curators", func() bool {
		v, _ := c.Curator.Heads().Newest()
		st := dag.NewStore(c.CuratorStore())
		at := &v.CID
		for at != nil {
			sh, err := st.SignedHead(ctx, *at)
			if err != nil {
				return false
			}
			signers[peer.ID(sh.Sig.Signer)] = true
			at = sh.Head.Parent
		}
		return signers[id2] && len(signers) == 2
	})

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
