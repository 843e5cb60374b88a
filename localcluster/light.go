package localcluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/assign"
	"github.com/pinfold/pinfold/chainlog"
	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/follower"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/internal/tasks"
	"github.com/pinfold/pinfold/ledger"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/records"
	"github.com/pinfold/pinfold/store"
	"github.com/pinfold/pinfold/trust"
)

// LightOptions shape a light follower.
type LightOptions struct {
	Cluster  configs.Cluster // what `follow init` reads: id, checkpoint, bootstrap, topics
	Nickname string
	Capacity int64 // bytes pledged (and reported free)
	// OfferInterval and AckInterval are the heartbeats; zero takes the
	// follower defaults (configs.DefaultFollower).
	OfferInterval time.Duration
	AckInterval   time.Duration
	// OnVerified, if set, is called with each head the node adopts and
	// the time it did.
	OnVerified func(v trust.Verified, at time.Time)
	Logger     *slog.Logger
}

// LightFollower is a follower node that does everything a follower does
// with heads, offers and ACKs, with the same code, and nothing with
// content. It runs a real libp2p host (gossipsub, bitswap) on 127.0.0.1,
// joins the heads, offers and ACK topics with the follower's validators
// (it publishes offers and ACKs without subscribing: like a follower with
// the cluster DHT on, it reads no offers; unlike a follower, it does not
// read or relay other members' ACKs), verifies heads with headsync (signature, chain, trust set),
// reads each head's members, shards and allocation over bitswap to
// compute its assignment (assign.Plan), follows the ACK window and the
// chain's log (records.Window, chainlog), signs an offer every
// OfferInterval, and signs and publishes a stored ACK for each shard
// assigned to it when the assignment changes and every AckInterval.
//
// What it leaves out: the pinset CRDT replica, fetching and storing
// content, the audit server and the control API. Its datastore and block
// store are in memory. Its ACKs claim shards it does not hold, with a
// digest that is not the content's: curators accept them (they cannot
// check a claim on receipt) but its audits would fail. It exists to
// measure what many followers cost a curator and the network.
type LightFollower struct {
	ID     peer.ID
	Node   *p2p.Node
	Heads  *headsync.Sync
	opt    LightOptions
	key    crypto.PrivKey
	log    *slog.Logger
	rules  trust.Rules
	hnet   *headsync.Net
	offers *p2p.Topic
	acks   *p2p.Topic
	window *records.Window
	plans  *assign.Memo
	chain  *chainlog.Tracker

	beatNow    chan struct{} // Heartbeat's request to ACK every shard now
	offerSize  atomic.Int64  // bytes of the newest signed offer
	offersSent atomic.Int64
	acksSent   atomic.Int64
	acksBeat   atomic.Int64 // of acksSent: heartbeats
	acksFresh  atomic.Int64 // of acksSent: shards newly assigned
	ackBatches atomic.Int64
	closeOnce  sync.Once
	closeErr   error
}

// StartLight creates a light follower with a fresh key and starts its
// node; Run runs it.
func StartLight(ctx context.Context, opt LightOptions) (f *LightFollower, err error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	def := configs.DefaultFollower()
	if opt.OfferInterval <= 0 {
		opt.OfferInterval = time.Duration(def.OfferInterval)
	}
	if opt.AckInterval <= 0 {
		opt.AckInterval = time.Duration(def.AckInterval)
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	f = &LightFollower{ID: id, opt: opt, key: key, log: opt.Logger, beatNow: make(chan struct{}, 1)}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	c := opt.Cluster
	clusterID, err := peer.Decode(c.ID)
	if err != nil {
		return nil, fmt.Errorf("cluster id: %w", err)
	}
	trustIDs, err := c.TrustIDs()
	if err != nil {
		return nil, err
	}
	f.rules = trust.Rules{Cluster: clusterID, Trust: trustIDs}
	checkpoint, err := cid.Decode(c.Checkpoint.Head)
	if err != nil {
		return nil, fmt.Errorf("checkpoint head: %w", err)
	}
	mem := dssync.MutexWrap(ds.NewMapDatastore())
	bs := blockstore.NewBlockstore(mem)
	pcfg := p2p.DefaultConfig()
	pcfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	pcfg.Bootstrap = c.Bootstrap
	pcfg.Blockstore = bs
	pcfg.DHT.Mode = p2p.DHTOff
	pcfg.FloodPublish = true // as follower.Daemon does
	if f.Node, err = p2p.New(key, pcfg, f.log.With("subsystem", "p2p")); err != nil {
		return nil, err
	}
	if f.Heads, err = headsync.New(ctx, headsync.Config{
		Rules: f.rules, Checkpoint: checkpoint, CheckpointSeq: c.Checkpoint.Seq, Name: ipns.NameFromPeer(clusterID),
	}, mem, bs, f.log.With("subsystem", "heads")); err != nil {
		return nil, err
	}
	if f.hnet, err = headsync.Attach(f.Heads, f.Node, c.Topics.Heads, c.ID, 30*time.Second); err != nil {
		return nil, err
	}
	f.Node.SpareFromPenalties(f.trusted) // as follower.Daemon does
	f.window = records.NewWindow(records.DefaultWindow)
	f.plans = assign.NewMemo(4)
	f.window.UsePlans(f.plans) // as follower.Daemon does
	book := records.NewBook(clusterID, f.window, f.log.With("subsystem", "acks"))
	if f.chain, err = chainlog.Open(ctx, mem, f.log.With("subsystem", "chainlog")); err != nil {
		return nil, err
	}
	if f.offers, err = f.Node.JoinTopic(c.Topics.Offers, records.OfferValidator(clusterID), p2p.WithMaxSize(records.MaxSize)); err != nil {
		return nil, err
	}
	if f.acks, err = f.Node.JoinTopic(c.Topics.Acks, book.AckValidator(), p2p.WithMaxSize(records.MaxBatchSize)); err != nil {
		return nil, err
	}
	return f, nil
}

// Run runs the light follower until ctx ends or a part fails.
func (f *LightFollower) Run(ctx context.Context) error {
	netDAG := func() *dag.Store { return dag.NewStore(store.Network{BS: f.Node.BlockService()}) }
	return tasks.Run(ctx, []tasks.Task{
		{Name: "p2p", Run: f.Node.Run},
		{Name: "heads", Run: f.hnet.Run},
		{Name: "verified", Run: f.watchHeads},
		{Name: "offers", Run: f.offerLoop},
		{Name: "acks", Run: f.ackLoop},
		{Name: "window", Run: func(ctx context.Context) error {
			return f.window.Follow(ctx, f.Heads, netDAG(), f.log.With("subsystem", "acks"))
		}},
		{Name: "chainlog", Run: func(ctx context.Context) error { return f.chain.Follow(ctx, f.Heads, netDAG()) }},
	}, nil)
}

// Close stops the node.
func (f *LightFollower) Close() error {
	f.closeOnce.Do(func() {
		var errs []error
		for _, t := range []*p2p.Topic{f.acks, f.offers} {
			if t != nil {
				errs = append(errs, t.Close())
			}
		}
		if f.hnet != nil {
			errs = append(errs, f.hnet.Close())
		}
		if f.Node != nil {
			errs = append(errs, f.Node.Close())
		}
		f.closeErr = errors.Join(errs...)
	})
	return f.closeErr
}

// Sent returns the offers, ACKs and ACK batches published so far.
func (f *LightFollower) Sent() (offers, acks, batches int64) {
	return f.offersSent.Load(), f.acksSent.Load(), f.ackBatches.Load()
}

// AckKinds splits the ACKs sent (Sent) by why they were sent: heartbeats,
// shards newly assigned, and the rest, sent again because no head
// recorded them.
func (f *LightFollower) AckKinds() (beat, fresh, resent int64) {
	beat, fresh = f.acksBeat.Load(), f.acksFresh.Load()
	return beat, fresh, f.acksSent.Load() - beat - fresh
}

// OfferSize returns the bytes of the newest signed offer sent.
func (f *LightFollower) OfferSize() int64 { return f.offerSize.Load() }

func (f *LightFollower) watchHeads(ctx context.Context) error {
	var last cid.Cid
	for {
		changed := f.Heads.Changed()
		if v, ok := f.Heads.Newest(); ok && !v.CID.Equals(last) {
			last = v.CID
			if f.opt.OnVerified != nil {
				f.opt.OnVerified(v, time.Now())
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// offerLoop signs and publishes an offer at start and every
// OfferInterval, as follower.Daemon does (every 2 s while nobody hears).
func (f *LightFollower) offerLoop(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := f.sendOffer(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("send offer", "err", err)
		}
		next := f.opt.OfferInterval
		if len(f.offers.Peers()) == 0 {
			next = min(next, 2*time.Second)
		}
		t.Reset(next)
	}
}

func (f *LightFollower) sendOffer(ctx context.Context) error {
	o := dag.Offer{
		Version: dag.Version, Cluster: []byte(f.rules.Cluster), Peer: []byte(f.ID),
		Capacity: f.opt.Capacity, Free: f.opt.Capacity, Agent: "pinfold/0.1 light", Nickname: f.opt.Nickname,
		Time: time.Now().UnixMilli(),
	}
	for _, a := range f.Node.Addrs() {
		if len(o.Addrs) < dag.MaxAddrs {
			o.Addrs = append(o.Addrs, a.Bytes())
		}
	}
	so, err := trust.SignOffer(f.key, o)
	if err != nil {
		return err
	}
	data, err := dag.EncodeSignedOffer(so)
	if err != nil {
		return err
	}
	if err := f.offers.Publish(ctx, data); err != nil {
		return err
	}
	f.offerSize.Store(int64(len(data)))
	f.offersSent.Add(1)
	return nil
}

// ackLoop computes the assignment of each new head and ACKs the shards
// assigned to this node, as follower.Daemon's shard loop and outbox do:
// a shard newly assigned at once, every shard every AckInterval, and
// again (5 s, doubling to 2 min) while a signed head does not record
// them. A head that keeps a shard with this node brings no ACK.
func (f *LightFollower) ackLoop(ctx context.Context) error {
	st := dag.NewStore(store.Network{BS: f.Node.BlockService()})
	tick := time.NewTicker(min(f.opt.AckInterval/2, time.Second))
	defer tick.Stop()
	acked := map[int64]time.Time{} // shard -> when its newest ACK was signed
	var beat, sent time.Time       // the last heartbeat of every shard; the last send
	wait := 5 * time.Second
	// The assignment of the newest head, computed once per head as the
	// follower's shard loop does (computing it at every tick cost 100
	// light followers the whole machine).
	var planned cid.Cid
	var mine []int64
	var bytes map[int64]int64
	for {
		changed := f.Heads.Changed()
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-tick.C:
		case <-f.beatNow:
			beat = time.Time{}
		}
		v, ok := f.Heads.Newest()
		if !ok {
			continue
		}
		if !v.CID.Equals(planned) {
			m, b, err := f.assignment(ctx, st, v)
			if err != nil {
				if ctx.Err() == nil {
					f.log.Warn("compute assignment", "head", v.CID, "err", err)
				}
				continue
			}
			planned, mine, bytes = v.CID, m, b
		}
		if len(mine) == 0 || !f.curatorListening(v) {
			continue
		}
		var send []int64
		var kind *atomic.Int64 // nil: a resend
		switch {
		case time.Since(beat) >= f.opt.AckInterval:
			send, wait, kind = mine, 5*time.Second, &f.acksBeat
		case slices.ContainsFunc(mine, func(id int64) bool { _, ok := acked[id]; return !ok }):
			for _, id := range mine {
				if _, ok := acked[id]; !ok {
					send = append(send, id)
				}
			}
			wait, kind = 5*time.Second, &f.acksFresh
		case f.recorded(mine, acked) || !follower.AckDue(time.Now(), sent, time.UnixMilli(v.Head.Time), f.chain.AppliedSigned(), wait):
			continue
		default:
			send, wait = mine, min(2*wait, 2*time.Minute)
		}
		signed := time.UnixMilli(time.Now().UnixMilli()) // the ACKs' time
		if err := f.sendAcks(ctx, v, send, bytes, signed); err != nil {
			if ctx.Err() == nil {
				f.log.Warn("send acks", "err", err)
			}
			continue
		}
		sent = signed
		if kind != nil {
			kind.Add(int64(len(send)))
		}
		if len(send) == len(mine) {
			beat = signed
		}
		kept := make(map[int64]time.Time, len(mine))
		for _, id := range mine {
			if t, ok := acked[id]; ok {
				kept[id] = t
			}
		}
		for _, id := range send {
			kept[id] = signed
		}
		acked = kept
	}
}

// Heartbeat makes the node ACK every shard assigned to it now, as its
// AckInterval heartbeat would.
func (f *LightFollower) Heartbeat() {
	select {
	case f.beatNow <- struct{}{}:
	default: // one is pending already
	}
}

// recorded reports whether the chain records a stored ACK of each shard
// in mine, signed at or after the newest one sent (acked).
func (f *LightFollower) recorded(mine []int64, acked map[int64]time.Time) bool {
	ok := true
	f.chain.Read(func(l *ledger.Ledger) {
		for _, id := range mine {
			h := l.Holding(string(f.ID), id)
			if h == nil || h.State != ledger.Stored || h.AckTime < acked[id].UnixMilli() {
				ok = false
				return
			}
		}
	})
	return ok
}

// assignment returns the shards head v gives this node, with their sizes.
func (f *LightFollower) assignment(ctx context.Context, st *dag.Store, v trust.Verified) ([]int64, map[int64]int64, error) {
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	plan, _, err := f.plans.Plan(pctx, st, v.CID, v.Head)
	if err != nil {
		return nil, nil, err
	}
	mine := plan.ShardsOf([]byte(f.ID))
	sizes := map[int64]int64{}
	for i := range plan.Len() {
		sa := plan.Shard(i)
		sizes[sa.ID] = sa.Bytes
	}
	return mine, sizes, nil
}

// trusted reports whether id is a curator of the newest head (or of the
// checkpoint's trust set before one).
func (f *LightFollower) trusted(id peer.ID) bool {
	if v, ok := f.Heads.Newest(); ok {
		return slices.ContainsFunc(v.Head.Trust, func(t []byte) bool { return peer.ID(t) == id })
	}
	return slices.Contains(f.rules.Trust, id)
}

func (f *LightFollower) curatorListening(v trust.Verified) bool {
	for _, p := range f.acks.Peers() {
		for _, t := range v.Head.Trust {
			if peer.ID(t) == p {
				return true
			}
		}
	}
	return false
}

// sendAcks signs a stored ACK naming head v, of time at, for each shard in mine and
// publishes them in batches of records.MaxBatch. The digest is derived
// from the shard id (this node holds no content).
func (f *LightFollower) sendAcks(ctx context.Context, v trust.Verified, mine []int64, sizes map[int64]int64, at time.Time) error {
	now := at.UnixMilli()
	for chunk := range slices.Chunk(mine, records.MaxBatch) {
		raws := make([][]byte, 0, len(chunk))
		for _, id := range chunk {
			digest := make([]byte, 32)
			binary.BigEndian.PutUint64(digest, uint64(id))
			a := dag.Ack{
				Version: dag.Version, Cluster: []byte(f.rules.Cluster), Peer: []byte(f.ID),
				Head: v.CID, Seq: v.Head.Seq, Shard: id, Digest: digest, Bytes: sizes[id],
				State: "stored", Time: now,
			}
			sa, err := trust.SignAck(f.key, a)
			if err != nil {
				return err
			}
			raw, err := dag.EncodeSignedAck(sa)
			if err != nil {
				return err
			}
			raws = append(raws, raw)
		}
		data, err := records.EncodeBatch(raws)
		if err != nil {
			return err
		}
		if err := f.acks.Publish(ctx, data); err != nil {
			return fmt.Errorf("publish %d acks: %w", len(raws), err)
		}
		f.acksSent.Add(int64(len(raws)))
		f.ackBatches.Add(1)
	}
	return nil
}
