package follower

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pinfold/pinfold/assign"
	"github.com/pinfold/pinfold/audit"
	"github.com/pinfold/pinfold/chainlog"
	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/internal/runlock"
	"github.com/pinfold/pinfold/internal/tasks"
	"github.com/pinfold/pinfold/metrics"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/pinset"
	"github.com/pinfold/pinfold/publish"
	"github.com/pinfold/pinfold/records"
	"github.com/pinfold/pinfold/store"
	"github.com/pinfold/pinfold/trust"
)

// Agent is the software version sent in offers.
const Agent = "pinfold/0.1"

// DaemonOptions parameterise a Daemon.
type DaemonOptions struct {
	Logger *slog.Logger
	Now    func() time.Time // nil: time.Now
	// RecordFile, if set, is an IPNS record file to resolve the newest
	// head from at start (as well as pubsub and peers).
	RecordFile string
	// IPFSAPI, if set, overrides the config's ipfs_api for this run: the
	// kubo RPC API to store content in instead of the embedded store.
	IPFSAPI string
	// Pprof serves the runtime profiles under /debug/pprof/ on the API.
	Pprof bool
}

// Daemon is a running follower.
type Daemon struct {
	metrics *prometheus.Registry // served at /metrics
	l       *Loaded
	opt     DaemonOptions
	log     *slog.Logger
	now     func() time.Time
	name    ipns.Name
	rules   trust.Rules
	store   *store.Store
	node    *p2p.Node
	heads   *headsync.Sync
	hnet    *headsync.Net
	pins    *pinset.Set
	crdtT   *pubsub.Topic
	offers  *p2p.Topic
	acks    *p2p.Topic

	window *records.Window   // recent heads an ACK may name
	plans  *assign.Memo      // plans of the newest heads, shared by the window and the shards
	book   *records.Book     // ACK acceptance
	chain  *chainlog.Tracker // what signed heads record
	out    *outbox           // own ACKs on their way into the chain

	fetcher     contentStore // the embedded store or kubo; see contentstore.go
	auditBlocks audit.Blocks // where audits are answered from: the fetcher's local blocks
	auditSrv    *audit.Server
	shards      *shards
	events      events
	disk        *diskGuard // keeps a full disk from crashing badger; see diskguard.go
	fetchWakeCh chan struct{}
	memberAddrs *memberAddrs  // from other members' offers; see peering.go
	caughtUpSig chan struct{} // receives after each catch-up
	traversal   bool          // NAT traversal on (configs.Network.Apply)

	mu       sync.Mutex
	caughtUp cid.Cid // newest head whose pinset this replica holds
	syncErr  string
	started  time.Time
	// noCurator is since when no curator of the trust set has been
	// connected; zero while one is (see watchCurators).
	noCurator time.Time

	stop      context.CancelFunc // set by Run; the API's stop calls it
	lock      *runlock.Lock      // the folder's daemon.lock, held while open
	closeOnce sync.Once
	closeErr  error
}

// OpenDaemon opens the follower in home and starts its node.
func OpenDaemon(ctx context.Context, home Home, opt DaemonOptions) (d *Daemon, err error) {
	l, err := home.Load()
	if err != nil {
		return nil, err
	}
	d = &Daemon{l: l, opt: opt, log: opt.Logger, now: opt.Now, shards: newShards(),
		fetchWakeCh: make(chan struct{}, 1), caughtUpSig: make(chan struct{}, 1), memberAddrs: newMemberAddrs(maxOffersKept)}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.started = d.now()
	d.noCurator = d.started
	opened := d // "return nil, err" sets d to nil before this runs
	defer func() {
		if err != nil {
			opened.Close()
		}
	}()
	if d.lock, err = lockFolder(home, d.now()); err != nil {
		return nil, err
	}
	clusterID, err := peer.Decode(l.Cluster.ID)
	if err != nil {
		return nil, fmt.Errorf("cluster.json: id: %w", err)
	}
	d.name = ipns.NameFromPeer(clusterID)
	trustIDs, err := l.Cluster.TrustIDs()
	if err != nil {
		return nil, err
	}
	d.rules = trust.Rules{Cluster: clusterID, Trust: trustIDs}
	checkpoint, err := cid.Decode(l.Cluster.Checkpoint.Head)
	if err != nil {
		return nil, fmt.Errorf("cluster.json: checkpoint.head: %w", err)
	}
	if d.store, err = store.Open(home.DatastorePath()); err != nil {
		return nil, err
	}
	d.disk = newDiskGuard(home, d.log.With("subsystem", "disk"), d.event)
	if !l.Config.DiskGuard {
		if err := d.disk.turnOff(); err != nil {
			return nil, err
		}
	}
	d.disk.allocateLogs()
	d.disk.check(0) // makes the reserve whole, or starts paused
	if err := d.checkIdentity(ctx, clusterID, checkpoint); err != nil {
		return nil, err
	}
	pcfg := p2p.DefaultConfig()
	pcfg.Listen = l.Config.Listen
	pcfg.Bootstrap = l.Cluster.Bootstrap
	pcfg.PeersFile = home.PeersPath()
	pcfg.Blockstore = guardedBlocks{d.store.Blocks, d.disk} // what bitswap fetches is checked against the free space
	d.metrics = metrics.NewRegistry()
	pcfg.Metrics = d.metrics
	pcfg.Datastore = namespace.Wrap(d.store.Datastore, ds.NewKey("/pinfold/p2p"))
	d.traversal = configs.Network{
		ClusterID: l.Cluster.ID, Relays: l.Cluster.Bootstrap, Listen: l.Config.Listen,
		NAT: l.Config.NAT, Cluster: l.Config.ClusterDHT, DHT: l.Config.DHT,
	}.Apply(&pcfg)
	// Our own offers and ACKs go straight to every connected peer on the
	// topic, the curators among them, not only to the gossipsub mesh (6
	// of the topic's peers): otherwise most of them reach a curator only
	// through other followers, whose queues drop bursts. At 100 followers
	// an ACK heartbeat round lost 1,184 of 2,784 ACKs that way (they were
	// sent again). A follower keeps few connections, so this costs little.
	pcfg.FloodPublish = true
	pcfg.Bandwidth = p2p.BandwidthConfig{MaxUpload: int64(l.Config.MaxUpload), MaxDownload: int64(l.Config.MaxDownload)}
	if d.node, err = p2p.New(l.Key, pcfg, d.log.With("subsystem", "p2p")); err != nil {
		return nil, err
	}
	d.metrics.MustRegister(metrics.NewFunc("follower", d.samples))
	if d.heads, err = headsync.New(ctx, headsync.Config{
		Rules: d.rules, Checkpoint: checkpoint, CheckpointSeq: l.Cluster.Checkpoint.Seq, Name: d.name, Now: d.now,
	}, d.store.Datastore, d.store.Blocks, d.log.With("subsystem", "heads")); err != nil {
		return nil, err
	}
	if d.hnet, err = headsync.Attach(d.heads, d.node, l.Cluster.Topics.Heads, l.Cluster.ID, 30*time.Second); err != nil {
		return nil, err
	}
	d.node.SpareFromPenalties(d.trusted) // a busy curator is slow, not a liar
	// Followers publish on these topics; their validators check what
	// others publish (and what we forward) all the same.
	d.window = records.NewWindow(records.DefaultWindow)
	d.plans = assign.NewMemo(4)
	d.window.UsePlans(d.plans) // one computation of each head's plan for the window and the shards
	d.book = records.NewBook(d.rules.Cluster, d.window, d.log.With("subsystem", "acks"))
	d.out = newOutbox()
	if d.chain, err = chainlog.Open(ctx, d.store.Datastore, d.log.With("subsystem", "chainlog")); err != nil {
		return nil, err
	}
	if d.offers, err = d.node.JoinTopic(l.Cluster.Topics.Offers, records.OfferValidator(d.rules.Cluster), p2p.WithMaxSize(records.MaxSize)); err != nil {
		return nil, err
	}
	if d.acks, err = d.node.JoinTopic(l.Cluster.Topics.Acks, d.book.AckValidator(), p2p.WithMaxSize(records.MaxBatchSize)); err != nil {
		return nil, err
	}
	// After a crash the pinset rebuilds its index before it opens: say so
	// to 'follow status' meanwhile.
	phase := "opening the pinset"
	if d.lock.Unclean {
		phase = "rebuilding the index"
	}
	if err := d.lock.SetPhase(phase, d.now()); err != nil {
		return nil, err
	}
	pscfg := pinset.DefaultConfig() // Writer false: a follower never writes the CRDT
	v := pinset.NewValidator(pscfg, d.trusted)
	if d.crdtT, err = d.node.JoinRawTopic(l.Cluster.Topics.CRDT, v.Check, p2p.WithMaxSize(pscfg.MaxBroadcastBytes)); err != nil {
		return nil, err
	}
	if d.pins, err = pinset.Open(ctx, pscfg, pinset.Deps{
		Datastore: d.store.Datastore, DAG: d.node.DAGService(), Topic: d.crdtT, Trusted: d.trusted,
		Logger: d.log.With("subsystem", "pinset"),
	}); err != nil {
		return nil, err
	}
	api := l.Config.IPFSAPI
	if opt.IPFSAPI != "" {
		api = opt.IPFSAPI
	}
	if api != "" && (l.Config.MaxUpload != 0 || l.Config.MaxDownload != 0) {
		d.log.Warn("max_upload and max_download bound this follower's own bitswap only: kubo fetches and serves the shards, outside them",
			"ipfs_api", api)
	}
	if err := d.openContentStore(ctx, api); err != nil {
		return nil, err
	}
	if d.auditSrv, err = audit.Serve(d.node.Host(), l.Cluster.ID, d.rules.Cluster, d.auditBlocks, d.trusted,
		audit.DefaultConfig(), d.log.With("subsystem", "audit")); err != nil {
		return nil, err
	}
	if err := d.lock.SetPhase("checking the stored shards", d.now()); err != nil {
		return nil, err
	}
	if err := d.loadShardRecords(ctx); err != nil {
		return nil, err
	}
	if err := d.checkStoredShards(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Daemon) caughtUpCh() <-chan struct{} { return d.caughtUpSig }

func (d *Daemon) trusted(id peer.ID) bool {
	if v, ok := d.heads.Newest(); ok {
		for _, t := range v.Head.Trust {
			if peer.ID(t) == id {
				return true
			}
		}
		return false
	}
	for _, t := range d.rules.Trust {
		if t == id {
			return true
		}
	}
	return false
}

// Node returns the follower's libp2p node.
func (d *Daemon) Node() *p2p.Node { return d.node }

// Blocks returns the embedded block store (the content of the shards
// held, unless they are kept in kubo).
func (d *Daemon) Blocks() blockstore.Blockstore { return d.store.Blocks }

// Pins returns the follower's pinset replica.
func (d *Daemon) Pins() *pinset.Set { return d.pins }

// Heads returns the follower's view of the newest head.
func (d *Daemon) Heads() *headsync.Sync { return d.heads }

// Run follows the cluster until ctx ends, the control API's stop is
// called, or a component fails. It writes api.addr while it serves.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.mu.Lock()
	d.stop = cancel
	d.mu.Unlock()
	ln, err := net.Listen("tcp", d.l.Config.API)
	if err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	if err := configs.WriteFileAtomic(d.l.Home.APIAddrPath(), []byte(ln.Addr().String()+"\n"), 0o600); err != nil {
		ln.Close()
		return err
	}
	defer os.Remove(d.l.Home.APIAddrPath())
	srv := &http.Server{Handler: d.apiHandler(), ReadHeaderTimeout: 10 * time.Second}

	return tasks.Run(ctx, []tasks.Task{
		{Name: "p2p", Run: d.node.Run},
		{Name: "heads", Run: d.hnet.Run},
		{Name: "record-file", Run: d.recordFileLoop},
		{Name: "offers", Run: d.offerLoop},
		{Name: "offers-in", Run: d.readOffers},
		{Name: "peering", Run: d.peeringLoop},
		{Name: "curators", Run: d.watchCurators},
		{Name: "pinset", Run: d.followLoop},
		{Name: "shards", Run: d.shardLoop},
		{Name: "fetch", Run: d.fetchLoop},
		{Name: "disk", Run: d.diskLoop},
		{Name: "provide", Run: d.provideLoop},
		{Name: "disk-guard", Run: d.disk.run},
		{Name: "disk-watch", Run: d.disk.watch},
		{Name: "acks", Run: d.readAcks},
		{Name: "ack-sender", Run: d.ackSender},
		{Name: "window", Run: func(ctx context.Context) error {
			return d.window.Follow(ctx, d.heads, dag.NewStore(store.Network{BS: d.node.BlockService()}), d.log.With("subsystem", "acks"))
		}},
		{Name: "chainlog", Run: func(ctx context.Context) error {
			return d.chain.Follow(ctx, d.heads, dag.NewStore(store.Network{BS: d.node.BlockService()}))
		}},
		{Name: "api", Run: tasks.Serve(srv, ln)},
	}, func() {
		if err := d.lock.SetPhase("running", d.now()); err != nil {
			d.log.Warn("daemon lock", "err", err)
		}
		d.log.Info("follower running", "peer", d.l.ID, "cluster", d.l.Cluster.Name, "api", ln.Addr().String(), "addrs", d.node.Addrs())
	})
}

// Close stops everything the daemon opened, in reverse order.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() {
		var errs []error
		if d.pins != nil {
			errs = append(errs, d.pins.Close())
		}
		if d.crdtT != nil {
			errs = append(errs, d.crdtT.Close())
		}
		for _, t := range []*p2p.Topic{d.acks, d.offers} {
			if t != nil {
				errs = append(errs, t.Close())
			}
		}
		if d.hnet != nil {
			errs = append(errs, d.hnet.Close())
		}
		if d.auditSrv != nil {
			errs = append(errs, d.auditSrv.Close())
		}
		if d.node != nil {
			errs = append(errs, d.node.Close())
		}
		if d.store != nil {
			errs = append(errs, d.store.Close())
		}
		if d.lock != nil {
			errs = append(errs, d.lock.Release())
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// recordFileLoop considers the record file of DaemonOptions.RecordFile,
// if any, alongside the rest of the start-up: the head it names usually
// has to be fetched from peers, and the node dials them meanwhile. While
// no peer has the head's blocks (headsync.ErrUnavailable), it tries again
// every recordRetry and whenever a peer connects, until the record
// expires or ctx ends. A record that does not verify is logged and
// dropped at once.
func (d *Daemon) recordFileLoop(ctx context.Context) error {
	path := d.opt.RecordFile
	if path == "" {
		return nil
	}
	rec, err := publish.ReadRecordFile(path, d.name, d.now())
	if err != nil {
		d.log.Warn("record file", "path", path, "err", err)
		return nil
	}
	// Each identified connection may bring a peer with the head's blocks.
	conns, err := d.node.Host().EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted),
		eventbus.BufSize(16), eventbus.Name("pinfold-follower-record-file"))
	if err != nil {
		return fmt.Errorf("record file: subscribe to host events: %w", err)
	}
	defer conns.Close()
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-conns.Out():
		case <-retry.C:
		}
		out, err := d.heads.Consider(ctx, headsync.Announcement{Record: rec.Raw}, headsync.FromFile, "")
		switch {
		case err == nil:
			d.log.Info("record file", "path", path, "seq", rec.Seq, "outcome", out.String())
			return nil
		case ctx.Err() != nil:
			return nil
		case !errors.Is(err, headsync.ErrUnavailable):
			d.log.Warn("record file", "path", path, "err", err)
			return nil
		case !d.now().Before(rec.EOL):
			d.log.Warn("record file expired before its head could be fetched", "path", path, "err", err)
			return nil
		}
		d.log.Debug("record file: head not fetched yet", "path", path, "err", err)
		retry.Reset(recordRetry)
	}
}

const recordRetry = 2 * time.Second

// followLoop brings the pinset up to the newest verified head: it feeds
// the head's CRDT heads to the replica and waits until they are processed.
func (d *Daemon) followLoop(ctx context.Context) error {
	netDAG := dag.NewStore(store.Network{BS: d.node.BlockService()})
	for {
		changed := d.heads.Changed()
		if v, ok := d.heads.Newest(); ok && !d.isCaughtUp(v.CID) {
			err := d.catchUp(ctx, netDAG, v)
			d.mu.Lock()
			if err != nil {
				d.syncErr = err.Error()
			} else {
				d.syncErr = ""
				d.caughtUp = v.CID
			}
			d.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				d.log.Warn("pinset sync", "head", v.CID, "err", err)
				select {
				case <-ctx.Done():
					return nil
				case <-changed:
				case <-time.After(5 * time.Second): // retry
				}
				continue
			}
			if err == nil {
				d.log.Info("pinset caught up", "head", v.CID, "seq", v.Head.Seq, "pins", d.pins.Stats().Pins)
				d.event("head", fmt.Sprintf("verified head seq %d signed by %s; pinset caught up", v.Head.Seq, peer.ID(v.Sig.Signer)))
				select {
				case d.caughtUpSig <- struct{}{}:
				default:
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

func (d *Daemon) isCaughtUp(c cid.Cid) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.caughtUp.Equals(c)
}

func (d *Daemon) catchUp(ctx context.Context, netDAG *dag.Store, v trust.Verified) error {
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	ps, err := netDAG.Pinset(fctx, v.Head.Pinset)
	cancel()
	if err != nil {
		return fmt.Errorf("read pinset of head %s: %w", v.CID, err)
	}
	if len(ps.CRDTHeads) == 0 {
		return nil
	}
	// Stop waiting when a newer head arrives; the loop starts over with it.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := d.heads.Changed()
	go func() { // owned by catchUp: ends when it returns
		select {
		case <-changed:
			cancel()
		case <-wctx.Done():
		}
	}()
	return d.pins.WaitFor(wctx, ps.CRDTHeads)
}

// Pledge returns the bytes pledged and the free bytes of the data disk.
func (d *Daemon) Pledge() (pledged, free int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.l.Home.Dir, &st); err == nil {
		free = int64(st.Bavail) * st.Bsize
	}
	return d.l.Config.Storage.Resolve(uint64(max(free, 0))), free
}

// offerLoop sends a signed offer at start and every OfferInterval.
func (d *Daemon) offerLoop(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := d.sendOffer(ctx); err != nil {
			d.log.Warn("send offer", "err", err)
		}
		next := time.Duration(d.l.Config.OfferInterval)
		if len(d.offers.Peers()) == 0 {
			next = min(next, 2*time.Second) // nobody heard it yet
		}
		t.Reset(next)
	}
}

func (d *Daemon) sendOffer(ctx context.Context) error {
	pledged, free := d.Pledge()
	// Curators refuse a pledge larger than the free space plus what is
	// held for the cluster: offer no more than that.
	if held := d.heldBytes(); pledged > free+held {
		pledged = max(free+held, 0)
	}
	o := dag.Offer{
		Version: dag.Version, Cluster: []byte(d.rules.Cluster), Peer: []byte(d.l.ID),
		Capacity: pledged, Free: free, Agent: Agent, Nickname: d.l.Config.Nickname, Domain: d.l.Config.Domain,
		Time: d.now().UnixMilli(),
	}
	for _, a := range d.node.Addrs() {
		if len(o.Addrs) < dag.MaxAddrs {
			o.Addrs = append(o.Addrs, a.Bytes())
		}
	}
	so, err := trust.SignOffer(d.l.Key, o)
	if err != nil {
		return err
	}
	data, err := dag.EncodeSignedOffer(so)
	if err != nil {
		return err
	}
	return d.offers.Publish(ctx, data)
}
