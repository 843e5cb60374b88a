package curator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pinfold/pinfold/assign"
	"github.com/pinfold/pinfold/audit"
	"github.com/pinfold/pinfold/chainlog"
	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/internal/runlock"
	"github.com/pinfold/pinfold/internal/tasks"
	"github.com/pinfold/pinfold/metrics"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/pinset"
	"github.com/pinfold/pinfold/records"
	"github.com/pinfold/pinfold/trust"
)

// DaemonOptions parameterise a Daemon.
type DaemonOptions struct {
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// APIReady, if set, receives the API's listen address once it serves.
	APIReady func(addr string)
	// Pprof serves the runtime profiles under /debug/pprof/ on the API.
	Pprof bool
}

// Daemon is a running curator: its libp2p node, the CRDT pinset it writes,
// the head it publishes, the members it admits and the HTTP API.
type Daemon struct {
	metrics     *prometheus.Registry // served at /metrics
	l           *Loaded
	opt         DaemonOptions
	log         *slog.Logger
	now         func() time.Time
	name        ipns.Name
	rules       trust.Rules
	id          peer.ID
	store       *Store
	node        *p2p.Node
	pins        *pinset.Set
	crdtTop     *pubsub.Topic
	heads       *headsync.Sync
	hnet        *headsync.Net
	offers      *p2p.Topic
	acks        *p2p.Topic
	members     *Members
	window      *records.Window   // recent heads an ACK may name
	book        *records.Book     // ACK acceptance
	chain       *chainlog.Tracker // what signed heads record
	audits      *auditor
	auditClient *audit.Client
	pending     *ackLog
	ackTab      *ackTable
	plans       *assign.Memo // plans of the newest heads, shared by status, audits and the ACK window
	allocs      allocMemo    // the allocation without overrides (keepEstablished)
	overridden  allocMemo    // with the overrides keepEstablished chose
	shardClock  shardClock
	statuses    shardStatuses
	recent      recent
	checks      *sizeChecks
	dht         dhtState

	publishMu   sync.Mutex // one head built at a time
	addMu       sync.Mutex // one pin batch at a time
	lastMembers uint64     // members version in the newest head we built
	// beforeVerify, for tests, runs between signing a head and verifying
	// it: where another curator's head can come first.
	beforeVerify func()

	refusedMu     sync.Mutex
	refusedOffers map[string]uint64 // offers outside the pledge policy, by reason
	wake          chan struct{}

	lock      *runlock.Lock // the home's daemon.lock, held while open
	closeOnce sync.Once
	closeErr  error
}

// ErrAlreadyRunning is returned by OpenDaemon when another process runs a
// daemon on the same home.
var ErrAlreadyRunning = errors.New("curator: a daemon is already running")

// lockDaemon takes home's daemon lock, or says which process holds it.
func lockDaemon(home Home, now time.Time) (*runlock.Lock, error) {
	l, err := runlock.Acquire(home.LockPath(), "opening the datastore", now)
	var held *runlock.HeldError
	if errors.As(err, &held) {
		return nil, fmt.Errorf("%w (pid %d) in %s", ErrAlreadyRunning, held.Info.PID, home.Dir)
	}
	return l, err
}

// DaemonRunning reports whether a daemon runs on home, and its pid.
func DaemonRunning(home Home) (int, bool) {
	info, held, err := runlock.Read(home.LockPath())
	return info.PID, err == nil && held
}

// OpenDaemon opens the curator in home and starts its node. Call Run, then
// Close.
func OpenDaemon(ctx context.Context, home Home, opt DaemonOptions) (d *Daemon, err error) {
	l, err := home.Load()
	if err != nil {
		return nil, err
	}
	d = &Daemon{l: l, opt: opt, log: opt.Logger, now: opt.Now, wake: make(chan struct{}, 1)}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	opened := d // "return nil, err" sets d to nil before this runs
	defer func() {
		if err != nil {
			opened.Close()
		}
	}()
	if d.lock, err = lockDaemon(home, d.now()); err != nil {
		return nil, err
	}
	if d.name, err = l.ClusterName(); err != nil {
		return nil, err
	}
	if d.rules, err = rulesFor(l); err != nil {
		return nil, err
	}
	if d.id, err = peer.IDFromPrivateKey(l.CuratorKey); err != nil {
		return nil, err
	}
	if d.store, err = OpenStore(home.DatastorePath()); err != nil {
		return nil, err
	}
	checkpoint, err := cid.Decode(l.Cluster.Checkpoint.Head)
	if err != nil {
		return nil, fmt.Errorf("cluster.json: checkpoint.head: %w", err)
	}
	pcfg := p2p.DefaultConfig()
	pcfg.Listen = l.Config.Listen
	pcfg.Bootstrap = l.Cluster.Bootstrap
	pcfg.PeersFile = filepath.Join(home.Dir, "peers.json")
	pcfg.Blockstore = d.store.Blocks
	d.metrics = metrics.NewRegistry()
	pcfg.Metrics = d.metrics
	pcfg.Datastore = namespace.Wrap(d.store.Datastore, ds.NewKey("/pinfold/p2p"))
	configs.Network{
		ClusterID: l.Cluster.ID, Listen: l.Config.Listen,
		NAT: l.Config.NAT, Cluster: l.Config.ClusterDHT, DHT: l.Config.DHT,
	}.Apply(&pcfg)
	// The curator originates every head: it sends each to every follower
	// it is connected to, not only to its gossipsub mesh (6 to 12 peers).
	// Followers connect to the curator alone unless they learn other
	// peers, so without this a follower outside the mesh got a head only
	// from gossip (IHAVE to a few peers per heartbeat, for three
	// heartbeats) or from its 30 s poll: with 20 followers some heads took
	// 30 s. Its other messages are small too (CRDT broadcasts carry head
	// CIDs; the deltas travel over bitswap).
	pcfg.FloodPublish = true
	if d.node, err = p2p.New(l.CuratorKey, pcfg, d.log.With("subsystem", "p2p")); err != nil {
		return nil, err
	}
	d.metrics.MustRegister(metrics.NewFunc("curator", d.samples))
	d.heads, err = headsync.New(ctx, headsync.Config{
		Rules: d.rules, Checkpoint: checkpoint, CheckpointSeq: l.Cluster.Checkpoint.Seq, Name: d.name, Now: d.now,
	}, d.store.Datastore, d.store.Blocks, d.log.With("subsystem", "heads"))
	if err != nil {
		return nil, err
	}
	if _, have := d.heads.Newest(); !have {
		// A curator that joined an existing cluster starts from the
		// checkpoint; the head protocol brings it up to date.
		d.log.Info("no verified head yet; waiting for peers")
	}
	if d.hnet, err = headsync.Attach(d.heads, d.node, l.Cluster.Topics.Heads, l.Cluster.ID, 30*time.Second); err != nil {
		return nil, err
	}
	if d.members, err = openMembers(ctx, d.store.Datastore, l.Config.Admission, l.Config.Allowlist, time.Duration(l.Config.MemberTTL),
		PledgePolicy{Max: int64(l.Config.MaxPledge)}); err != nil {
		return nil, err
	}
	d.lastMembers = d.members.Version()
	if d.pending, err = openAckLog(ctx, d.store.Datastore); err != nil {
		return nil, err
	}
	if d.ackTab, err = openAckTable(ctx, d.store.Datastore); err != nil {
		return nil, err
	}
	d.window = records.NewWindow(l.Config.AckWindow)
	d.plans = assign.NewMemo(4)
	d.window.UsePlans(d.plans)
	d.book = records.NewBook(d.rules.Cluster, d.window, d.log.With("subsystem", "acks"))
	d.ackTab.seed(d.book)
	if d.chain, err = chainlog.Open(ctx, d.store.Datastore, d.log.With("subsystem", "chainlog")); err != nil {
		return nil, err
	}
	d.audits = newAuditor(l.Config.Audit.Concurrency)
	acfg := audit.DefaultConfig()
	acfg.Timeout, acfg.Samples = time.Duration(l.Config.Audit.Timeout), l.Config.Audit.Samples
	acfg.MaxResponse = max(acfg.MaxResponse, int64(acfg.Samples)*audit.MaxBlockSize)
	if d.auditClient, err = audit.NewClient(d.node.Host(), l.Cluster.ID, acfg); err != nil {
		return nil, err
	}
	if d.checks, err = openSizeChecks(ctx, d.store.Datastore, d.log.With("subsystem", "sizecheck"), d.now); err != nil {
		return nil, err
	}
	if d.offers, err = d.node.JoinTopic(l.Cluster.Topics.Offers, records.OfferValidator(d.rules.Cluster), p2p.WithMaxSize(records.MaxSize)); err != nil {
		return nil, err
	}
	if d.acks, err = d.node.JoinTopic(l.Cluster.Topics.Acks, d.book.AckValidator(), p2p.WithMaxSize(records.MaxBatchSize)); err != nil {
		return nil, err
	}
	pscfg := pinset.DefaultConfig()
	pscfg.Writer = true
	v := pinset.NewValidator(pscfg, d.trusted)
	if d.crdtTop, err = d.node.JoinRawTopic(l.Cluster.Topics.CRDT, v.Check, p2p.WithMaxSize(pscfg.MaxBroadcastBytes)); err != nil {
		return nil, err
	}
	if d.pins, err = pinset.Open(ctx, pscfg, pinset.Deps{
		Datastore: d.store.Datastore, DAG: d.node.DAGService(), Topic: d.crdtTop, Trusted: d.trusted,
		Logger: d.log.With("subsystem", "pinset"),
	}); err != nil {
		return nil, err
	}
	return d, nil
}

func rulesFor(l *Loaded) (trust.Rules, error) {
	ids, err := l.Cluster.TrustIDs()
	if err != nil {
		return trust.Rules{}, err
	}
	cl, err := peer.Decode(l.Cluster.ID)
	if err != nil {
		return trust.Rules{}, fmt.Errorf("cluster.json: id: %w", err)
	}
	return trust.Rules{Cluster: cl, Trust: ids}, nil
}

// trusted reports whether id is in the trust set of the newest head (or
// the checkpoint's before any head is verified). Used by the CRDT topic.
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

// Node returns the daemon's libp2p node.
func (d *Daemon) Node() *p2p.Node { return d.node }

// Pins returns the daemon's pinset replica.
func (d *Daemon) Pins() *pinset.Set { return d.pins }

// Heads returns the daemon's view of the newest head.
func (d *Daemon) Heads() *headsync.Sync { return d.heads }

// Run runs the node, the head sync, the offer and ACK readers, the
// publisher, the background size checks and the HTTP API until ctx ends
// or one of them fails.
func (d *Daemon) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", d.l.Config.API)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	srv := &http.Server{Handler: d.apiHandler(), ReadHeaderTimeout: 10 * time.Second}
	return tasks.Run(ctx, []tasks.Task{
		{Name: "p2p", Run: d.node.Run},
		{Name: "heads", Run: d.hnet.Run},
		{Name: "offers", Run: d.readOffers},
		{Name: "acks", Run: d.readAcks},
		{Name: "window", Run: d.followWindow},
		{Name: "chainlog", Run: d.followChain},
		{Name: "audits", Run: d.auditLoop},
		{Name: "publisher", Run: d.publishLoop},
		{Name: "dht", Run: d.dhtLoop},
		{Name: "feed", Run: d.feedLoop},
		{Name: "sizecheck", Run: d.runSizeChecks},
		{Name: "shard-status", Run: d.countShardsLoop},
		{Name: "api", Run: tasks.Serve(srv, ln)},
	}, func() {
		if err := d.lock.SetPhase("running", d.now()); err != nil {
			d.log.Warn("daemon lock", "err", err)
		}
		if d.opt.APIReady != nil {
			d.opt.APIReady(ln.Addr().String())
		}
		d.log.Info("curator running", "peer", d.id, "cluster", d.name, "api", ln.Addr().String(), "addrs", d.node.Addrs())
	})
}

// Close stops everything the daemon opened, in reverse order.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() {
		var errs []error
		if d.pins != nil {
			errs = append(errs, d.pins.Close())
		}
		if d.crdtTop != nil {
			errs = append(errs, d.crdtTop.Close())
		}
		for _, t := range []*p2p.Topic{d.acks, d.offers} {
			if t != nil {
				errs = append(errs, t.Close())
			}
		}
		if d.hnet != nil {
			errs = append(errs, d.hnet.Close())
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

// poke asks the publisher to consider a new head soon.
func (d *Daemon) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Blocks returns the daemon's block store.
func (d *Daemon) Blocks() blockstore.Blockstore { return d.store.Blocks }
