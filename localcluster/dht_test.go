package localcluster_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/internal/testlog"
	"github.com/pinfold/pinfold/localcluster"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/publish"
	"github.com/pinfold/pinfold/trust"
)

// dhtPrefix keeps the test DHT apart from any other on the machine.
const dhtPrefix = "/pinfold-test"

// dhtPeer starts a bare node, not part of the cluster (no cluster
// bootstrap, no topics), whose only link to anyone is the DHT bootstrap
// list: the curator. It is a DHT server, so that the curator's puts have
// a remote peer to store the record at.
func dhtPeer(t *testing.T, c *localcluster.Cluster) *p2p.Node {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p2p.DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Blockstore = blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	cfg.DHT = p2p.DHTConfig{Mode: p2p.DHTServer, ProtocolPrefix: dhtPrefix}
	for _, a := range c.Curator.Node().Addrs() {
		cfg.DHT.Bootstrap = append(cfg.DHT.Bootstrap, a.String())
	}
	n, err := p2p.New(key, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := n.Close(); err != nil {
			t.Errorf("close DHT peer: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("DHT peer Run: %v", err)
		}
	})
	return n
}

// resolves reports whether n finds in the DHT a record of name that
// publish.ParseRecord accepts and that names want, the curator's newest
// head, with its seq.
func resolves(t *testing.T, n *p2p.Node, name ipns.Name, want trust.Verified) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := n.GetRecord(ctx, name)
	if err != nil {
		return false
	}
	rec, err := publish.ParseRecord(raw, name, time.Now())
	if err != nil {
		t.Fatalf("the DHT returned a record ParseRecord refuses: %v", err)
	}
	return rec.Head.Equals(want.CID) && rec.Seq == uint64(want.Head.Seq) && publish.CheckHead(rec, want.CID, uint64(want.Head.Seq)) == nil
}

func TestCuratorPublishesRecordToDHT(t *testing.T) {
	ctx := context.Background()
	cfg := configs.DefaultCurator()
	cfg.HeadInterval = configs.Duration(200 * time.Millisecond)
	cfg.DHT = configs.DHT{Mode: "server", ProtocolPrefix: dhtPrefix}
	c, err := localcluster.Start(ctx, localcluster.Options{Dir: t.TempDir(), Curator: cfg, Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
	})
	name := ipns.NameFromPeer(c.ClusterPeer())
	if !c.Curator.Node().DHTEnabled() {
		t.Fatal("curator DHT is off")
	}

	// A first head beyond genesis, with its record.
	if _, err := c.Curator.AddPins(ctx, fakePins(t, 0, 10)); err != nil {
		t.Fatal(err)
	}
	var first trust.Verified
	waitFor(t, 30*time.Second, "a first published head", func() bool {
		v, ok := c.Curator.Heads().Newest()
		_, rec := c.Curator.Heads().Record()
		first = v
		return ok && rec && v.Head.Seq >= 1
	})

	// No other DHT peer yet: the put fails, the status says why, and the
	// record is served from the curator's own DHT store only.
	waitFor(t, 30*time.Second, "the status to report a failed put", func() bool {
		d := c.Curator.Status().DHT
		return d != nil && d.LastError != ""
	})
	if d := c.Curator.Status().DHT; !d.LastPut.IsZero() || d.Peers != 0 || d.Next.IsZero() {
		t.Errorf("DHT status with no DHT peer: %+v", *d)
	}

	client := dhtPeer(t, c)
	waitFor(t, 30*time.Second, "the DHT peer's routing table", func() bool { return client.DHTPeers() >= 1 })
	waitFor(t, 30*time.Second, "the first head's record in the DHT", func() bool {
		return resolves(t, client, name, first)
	})

	// A follower-side Sync whose only head source is the DHT: its topic
	// and head protocol are not the cluster's, so nobody announces to it
	// or answers it; it must resolve the record from the DHT, fetch the
	// head it names and verify the chain.
	sync := dhtOnlySync(t, c, client)
	waitFor(t, 30*time.Second, "the DHT-only Sync to adopt the first head", func() bool {
		v, ok := sync.Newest()
		return ok && v.CID.Equals(first.CID)
	})

	// A new head: the record in the DHT advances, and the Sync follows.
	if _, err := c.Curator.AddPins(ctx, fakePins(t, 10, 10)); err != nil {
		t.Fatal(err)
	}
	var second trust.Verified
	waitFor(t, 30*time.Second, "a second published head", func() bool {
		v, ok := c.Curator.Heads().Newest()
		rec, hasRec := c.Curator.Heads().Record()
		second = v
		return ok && hasRec && v.Head.Seq > first.Head.Seq && rec.Head.Equals(v.CID)
	})
	waitFor(t, 30*time.Second, "the second head's record in the DHT", func() bool {
		return resolves(t, client, name, second)
	})
	waitFor(t, 30*time.Second, "the DHT-only Sync to adopt the second head", func() bool {
		v, ok := sync.Newest()
		return ok && v.Head.Seq >= second.Head.Seq
	})
	if rej, _ := sync.Rejections(); len(rej) != 0 {
		t.Errorf("DHT-only Sync rejected candidates: %+v", rej)
	}

	// The status says so: the record of the second head (or a later
	// one) was put at a remote DHT server, no error since, a next put is
	// due. (Before the DHT peer came, puts failed: the curator then
	// served the record from its own DHT store only.)
	waitFor(t, 30*time.Second, "the status to report the second head's put", func() bool {
		d := c.Curator.Status().DHT
		return d != nil && d.LastSeq >= uint64(second.Head.Seq)
	})
	d := c.Curator.Status().DHT
	if d.Mode != "server" || d.Peers < 1 || d.LastPut.IsZero() || d.LastError != "" || !d.Next.After(d.LastPut) {
		t.Errorf("DHT status after a put: %+v", *d)
	}
}

// TestDHTOffNoStatus: with the DHT off (the default) the status has no
// DHT section.
func TestDHTOffNoStatus(t *testing.T) {
	c, err := localcluster.Start(context.Background(), localcluster.Options{Dir: t.TempDir(), Curator: configs.DefaultCurator(), Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
	}()
	if d := c.Curator.Status().DHT; d != nil {
		t.Fatalf("DHT off, status has %+v", *d)
	}
}

// dhtOnlySync builds a headsync.Sync for c's cluster on node n and runs
// its Net with a topic and head protocol of its own, asking every 200ms.
func dhtOnlySync(t *testing.T, c *localcluster.Cluster, n *p2p.Node) *headsync.Sync {
	t.Helper()
	ctx := context.Background()
	trustIDs, err := c.Config.TrustIDs()
	if err != nil {
		t.Fatal(err)
	}
	checkpoint, err := cid.Decode(c.Config.Checkpoint.Head)
	if err != nil {
		t.Fatal(err)
	}
	s, err := headsync.New(ctx, headsync.Config{
		Rules:      trust.Rules{Cluster: c.ClusterPeer(), Trust: trustIDs},
		Checkpoint: checkpoint, CheckpointSeq: c.Config.Checkpoint.Seq,
		Name: ipns.NameFromPeer(c.ClusterPeer()),
	}, dssync.MutexWrap(ds.NewMapDatastore()), n.BlockService().Blockstore(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hnet, err := headsync.Attach(s, n, "/pinfold-test/isolated/heads", "isolated", 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- hnet.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("head sync Run: %v", err)
		}
		if err := hnet.Close(); err != nil {
			t.Errorf("head sync Close: %v", err)
		}
	})
	return s
}
