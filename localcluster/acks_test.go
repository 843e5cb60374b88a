package localcluster_test

import (
	"context"
	"crypto/rand"
	"math"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/assign"
	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/curator"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/internal/testlog"
	"github.com/pinfold/pinfold/localcluster"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/pinset"
	"github.com/pinfold/pinfold/records"
	"github.com/pinfold/pinfold/trust"
)

// rogue is a raw libp2p host that speaks the offer and ACK topics with a
// key of its own, connected to the curator.
type rogue struct {
	t      *testing.T
	key    crypto.PrivKey
	id     peer.ID
	c      *localcluster.Cluster
	offers *p2p.Topic
	acks   *p2p.Topic
}

func newRogue(t *testing.T, c *localcluster.Cluster) *rogue {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p2p.DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	for _, a := range c.Curator.Node().Addrs() {
		cfg.Bootstrap = append(cfg.Bootstrap, a.String()+"/p2p/"+c.Curator.Status().Peer)
	}
	cfg.Blockstore = newMemBlockstore()
	n, err := p2p.New(key, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }() // ends with ctx, at cleanup
	t.Cleanup(func() { cancel(); <-done; n.Close() })
	any := func(context.Context, *pubsub.Message) error { return nil }
	r := &rogue{t: t, key: key, c: c}
	r.id, _ = peer.IDFromPrivateKey(key)
	if r.offers, err = n.JoinTopic(c.Config.Topics.Offers, any); err != nil {
		t.Fatal(err)
	}
	if r.acks, err = n.JoinTopic(c.Config.Topics.Acks, any, p2p.WithMaxSize(records.MaxBatchSize)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the rogue to see the curator on the offer and ACK topics", func() bool {
		return len(r.offers.Peers()) > 0 && len(r.acks.Peers()) > 0
	})
	return r
}

func (r *rogue) offer(capacity, free int64) {
	r.t.Helper()
	o := dag.Offer{Version: dag.Version, Cluster: []byte(r.c.ClusterPeer()), Peer: []byte(r.id), Capacity: capacity, Free: free,
		Agent: "rogue", Nickname: "rogue", Time: time.Now().UnixMilli()}
	so, err := trust.SignOffer(r.key, o)
	if err != nil {
		r.t.Fatal(err)
	}
	data, err := dag.EncodeSignedOffer(so)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.offers.Publish(context.Background(), data); err != nil {
		r.t.Fatal(err)
	}
}

// ack signs an ACK of shard as stored under head v, as the rogue, with
// the shard's true content digest (anyone with the pinset computes it).
func (r *rogue) ack(v trust.Verified, shard int64, at time.Time) []byte {
	r.t.Helper()
	var refs []assign.PinRef
	if err := r.c.Curator.Pins().ListShard(context.Background(), shard, func(p pinset.Pin) error {
		refs = append(refs, assign.PinRef{CID: p.CID.Bytes(), Size: p.Size})
		return nil
	}); err != nil {
		r.t.Fatal(err)
	}
	a := dag.Ack{Version: dag.Version, Cluster: []byte(r.c.ClusterPeer()), Peer: []byte(r.id), Head: v.CID, Seq: v.Head.Seq,
		Shard: shard, Digest: assign.Digest(refs), Bytes: 1000, State: "stored", Time: at.UnixMilli()}
	sa, err := trust.SignAck(r.key, a)
	if err != nil {
		r.t.Fatal(err)
	}
	raw, err := dag.EncodeSignedAck(sa)
	if err != nil {
		r.t.Fatal(err)
	}
	return raw
}

func (r *rogue) send(raws ...[]byte) {
	r.t.Helper()
	data, err := records.EncodeBatch(raws)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.acks.Publish(context.Background(), data); err != nil {
		r.t.Fatal(err)
	}
}

// waitRefused waits until the curator counted at least n refusals for reason.
func waitRefused(t *testing.T, c *localcluster.Cluster, reason error, n uint64) {
	t.Helper()
	waitFor(t, 30*time.Second, "the curator to refuse: "+reason.Error(), func() bool {
		return c.Curator.Status().Rejected[reason.Error()] >= n
	})
}

// TestAcksAcceptedOnlyWhereTheyCanBeTrue: a peer's ACKs are refused, and
// counted, when it is not a member, when the shard does not exist or is
// someone else's, when the head it names is out of the window, and when
// it replays; an absurd pledge is refused and allocation goes on. The log
// of every signed head holds only the one ACK that could be true.
func TestAcksAcceptedOnlyWhereTheyCanBeTrue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := configs.DefaultCurator()
	cfg.HeadInterval = configs.Duration(200 * time.Millisecond)
	cfg.ReplicationMin, cfg.ReplicationMax = 1, 1
	cfg.ShardTarget = 4000
	cfg.AckWindow = 3
	cfg.Audit.Interval, cfg.Audit.Timeout, cfg.Audit.Grace = configs.Duration(time.Second), configs.Duration(time.Second), configs.Duration(2*time.Second)
	c, err := localcluster.Start(ctx, localcluster.Options{Dir: t.TempDir(), Curator: cfg, Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Curator.AddPins(ctx, fakePins(t, 0, 12)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddFollower(ctx, "honest", localcluster.FollowerOptions{Pledge: pledge(1 << 30), OfferInterval: time.Second}); err != nil {
		t.Fatal(err)
	}
	r := newRogue(t, c)

	// Not a member yet: every ACK is refused.
	v, _ := c.Curator.Heads().Newest()
	r.send(r.ack(v, 0, time.Now()))
	waitRefused(t, c, records.ErrNotMember, 1)

	// An absurd pledge is refused, with a reason, and breaks nothing.
	r.offer(math.MaxInt64, math.MaxInt64)
	waitRefused(t, c, curator.ErrOfferRefused, 1)
	// A pledge bigger than the free space it reports is refused too.
	r.offer(1<<30, 1<<20)
	waitRefused(t, c, curator.ErrOfferRefused, 2)
	r.offer(1<<30, 2<<30)
	var mine, theirs int64 = -1, -1
	waitFor(t, 30*time.Second, "a head giving the rogue and the honest follower shards", func() bool {
		shards, err := c.Curator.Shards(ctx)
		if err != nil {
			return false
		}
		for _, s := range shards {
			for _, h := range s.Holders {
				if h.Assigned && h.Peer == r.id.String() {
					mine = s.ID
				} else if h.Assigned {
					theirs = s.ID
				}
			}
		}
		return mine >= 0 && theirs >= 0
	})

	v, _ = c.Curator.Heads().Newest()
	r.send(r.ack(v, 999, time.Now()))
	waitRefused(t, c, records.ErrNoShard, 1)
	r.send(r.ack(v, theirs, time.Now()))
	waitRefused(t, c, records.ErrNotAssigned, 1)

	// One ACK that could be true (audits, not this check, decide whether it
	// is), then its replay, byte for byte.
	genuine := r.ack(v, mine, time.Now())
	r.send(genuine)
	waitFor(t, 30*time.Second, "the curator to accept the rogue's ACK of its own shard", func() bool {
		for _, a := range c.Curator.Status().RecentAcks {
			if a.Peer == r.id.String() && a.Shard == mine {
				return true
			}
		}
		return false
	})
	r.send(genuine)
	waitRefused(t, c, records.ErrReplay, 1)
	// The member's clock does not make an old head fresh: once the window
	// moved past v, an ACK naming v is stale whatever its time says.
	for range 4 {
		if _, err := c.Curator.PublishNow(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	r.send(r.ack(v, mine, time.Now().Add(time.Hour)))
	waitRefused(t, c, records.ErrStaleHead, 1)

	// Every head's log holds the one accepted ACK of the rogue and nothing
	// else of it.
	var logged []dag.Ack
	eachLogEntry(t, ctx, c, func(_ int64, e dag.LogEntry) {
		if e.Ack != nil && peer.ID(e.Ack.Ack.Peer) == r.id {
			logged = append(logged, e.Ack.Ack)
		}
	})
	if len(logged) != 1 || logged[0].Shard != mine || logged[0].Seq != v.Head.Seq {
		t.Fatalf("the rogue's ACKs in signed logs: %+v; want only the one of shard %d at seq %d", logged, mine, v.Head.Seq)
	}
	if _, err := c.Curator.Shards(ctx); err != nil {
		t.Fatalf("allocation after the refused pledges: %v", err)
	}
	// Its one accepted ACK is audited; it cannot answer, and once the grace
	// period is over it is marked failing, its copy never counted.
	waitFor(t, 30*time.Second, "the rogue marked failing", func() bool {
		ms, err := c.Curator.MemberLoads(ctx)
		if err != nil {
			return false
		}
		for _, m := range ms {
			if m.Peer == r.id.String() {
				return m.Standing == curator.StandingFailing || m.Standing == curator.StandingExpelled
			}
		}
		return false
	})
	shards, err := c.Curator.Shards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shards {
		for _, h := range s.Holders {
			if h.Peer == r.id.String() && h.Proven {
				t.Fatalf("shard %d: the rogue's copy counts as proven", s.ID)
			}
		}
	}
}
