package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/client"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	ds "github.com/ipfs/go-datastore"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	record "github.com/libp2p/go-libp2p-record"
	coreconnmgr "github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// protectTag marks bootstrap peers in the connection manager.
const protectTag = "pinfold-bootstrap"

// UserAgent is what the host announces through identify.
const UserAgent = "pinfold"

// Node is the one libp2p host of a pinfold process, with gossipsub and
// bitswap on it. Build it with New, call Run to stay connected, Close to
// stop. All methods are safe for concurrent use.
type Node struct {
	cfg Config
	log *slog.Logger
	now func() time.Time // wall clock; tests may replace it before use

	host   host.Host
	ps     *pubsub.PubSub
	life   context.Context    // cancelled by Close
	psStop context.CancelFunc // cancels life, which ends pubsub's goroutines
	blocks blockservice.BlockService
	dag    ipld.DAGService
	rej    *rejections
	guard  *contentGuard // bitswap liars: ledger, penalties, connection gater
	up     *shaper       // bitswap's upload budget and meter
	down   *shaper       // bitswap's download budget and meter
	bs     *bitswap.Bitswap
	inbox  *inbox // per-peer budgets before gossipsub's validation queue
	mesh   *meshView
	dht    *dht.IpfsDHT               // nil when Config.DHT.Mode is off
	dhtVal record.NamespacedValidator // the DHT's validator, checked before a put
	cdht   *dht.IpfsDHT               // nil when Config.ClusterDHT.Mode is off
	prov   *providers                 // announces held roots in dht and cdht

	reach    reachability
	reachSub event.Subscription

	bootstrap []peer.AddrInfo // merged by ID, without ourselves
	mem       *memory         // nil when Config.PeersFile is ""
	members   *members        // kept cluster members (SetMembers)

	memberLookups atomic.Uint64 // members' addresses found in the cluster DHT

	mu      sync.Mutex
	running bool
	closed  bool

	done      chan struct{}  // closed by Close: Run stops
	runWG     sync.WaitGroup // the active Run
	closeOnce sync.Once
	closeErr  error
}

// New starts a host with identity key, listening on cfg.Listen, with
// gossipsub and bitswap on it. It does not dial anyone: Run does.
//
// The host has TCP and QUIC only, the connection manager and a resource
// manager sized from cfg, no mDNS, no DHT unless cfg.DHT asks (and then
// no public bootstrap), no relay, hole punching, NAT port mapping or
// AutoNAT service unless cfg asks (see natOptions).
// Gossipsub signs every message and requires valid signatures on every
// message received (StrictSign). Bitswap (client and server) asks only
// connected peers; its streams spend cfg.Bandwidth's upload and download
// budgets (see BandwidthConfig) and are metered (see Node.Bandwidth).
//
// Goroutines: libp2p, the DHT, gossipsub and bitswap start theirs here;
// they belong to the Node and stop in Close. logger may be nil.
func New(key crypto.PrivKey, cfg Config, logger *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if key == nil {
		return nil, errors.New("p2p: nil identity key")
	}
	if cfg.Blockstore == nil {
		return nil, errors.New("p2p: config has no blockstore")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("p2p: identity key: %w", err)
	}
	n := &Node{
		cfg:  cfg,
		log:  logger,
		now:  time.Now,
		mesh: newMeshView(),
		done: make(chan struct{}),

		members: newMembers(),
	}
	n.bootstrap = bootstrapPeers(cfg.Bootstrap, self)
	if cfg.PeersFile != "" && cfg.RememberPeers > 0 {
		peers, err := loadPeers(cfg.PeersFile, cfg.RememberPeers)
		if err != nil {
			// The file is a cache of hints; losing it costs only the
			// bootstrap list's help. Start empty; the next save replaces it.
			logger.Warn("ignoring unreadable peers file", "err", err)
		}
		n.mem = newMemory(cfg.RememberPeers, peers)
	}
	n.rej, err = newRejections(cfg.Rejections, logger, cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("p2p: register metrics: %w", err)
	}

	n.guard, err = newContentGuard(cfg.Bitswap, logger.With("subsystem", "bitswap"), n.nowFunc, cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("p2p: register metrics: %w", err)
	}
	if n.host, err = newHost(key, cfg, n.guard); err != nil {
		return nil, err
	}
	n.guard.disconnect = func(p peer.ID) { _ = n.host.Network().ClosePeer(p) }
	for _, ai := range n.bootstrap {
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
		n.host.ConnManager().Protect(ai.ID, protectTag)
	}
	if n.mem != nil {
		for _, p := range n.mem.list() {
			n.host.Peerstore().AddAddrs(p.ID, p.Addrs, time.Hour)
		}
	}
	if err := n.watchReachability(); err != nil {
		_ = n.host.Close()
		return nil, err
	}
	n.dhtVal = dhtValidator(n.host)
	var store ds.Batching
	if cfg.Datastore != nil {
		store = basicBatches{cfg.Datastore}
	}
	if n.dht, err = newDHT(n.host, cfg.DHT, n.dhtVal, store, "/dht"); err != nil {
		n.closeEarly()
		return nil, err
	}
	if n.cdht, err = newDHT(n.host, cfg.ClusterDHT, n.dhtVal, store, "/cluster-dht"); err != nil {
		n.closeEarly()
		return nil, err
	}
	if n.prov, err = newProviders(store, cfg.Provide, map[string]*dht.IpfsDHT{"cluster": n.cdht, "dht": n.dht}); err != nil {
		n.closeEarly()
		return nil, err
	}

	n.life, n.psStop = context.WithCancel(context.Background())
	n.inbox = newInbox(n.rej, n.nowFunc, n.host.ID())
	n.ps, err = pubsub.NewGossipSub(n.life, n.host, append([]pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMaxMessageSize(cfg.MaxMessageSize),
		pubsub.WithFloodPublish(cfg.FloodPublish),
		pubsub.WithPeerExchange(cfg.PeerExchange),
		pubsub.WithRawTracer(tracer{rej: n.rej, now: n.nowFunc, mesh: n.mesh, in: n.inbox}),
		pubsub.WithLogger(logger.With("subsystem", "pubsub")),
	}, n.inbox.options()...)...)
	if err != nil {
		n.psStop()
		_ = n.prov.stop()
		n.closeEarly()
		return nil, fmt.Errorf("p2p: start gossipsub: %w", err)
	}

	n.up, n.down = newShaper(cfg.Bandwidth.MaxUpload), newShaper(cfg.Bandwidth.MaxDownload)
	shaped := shapedHost{Host: n.host, life: n.life, up: n.up, down: n.down}
	bsNet := guardedNetwork{BitSwapNetwork: bsnet.NewFromIpfsHost(shaped), g: n.guard}
	// Bitswap asks connected peers first, then, after SearchDelay, the
	// holders the cluster DHT (or the other DHT) names.
	var finder routing.ContentDiscovery
	if n.cdht != nil {
		finder = n.cdht
	} else if n.dht != nil {
		finder = n.dht
	}
	bs := bitswap.New(context.Background(), bsNet, finder, cfg.Blockstore,
		bitswap.ProviderSearchDelay(cfg.Bitswap.SearchDelay),
		bitswap.RebroadcastDelay(cfg.Bitswap.RebroadcastDelay),
		bitswap.WithTargetMessageSize(cfg.Bitswap.TargetMessageSize),
		bitswap.WithClientOption(client.WithPerPeerSendDelay(cfg.Bitswap.PerPeerSendDelay)),
	)
	n.bs = bs
	n.blocks = blockservice.New(cfg.Blockstore, bs)
	n.dag = merkledag.NewDAGService(n.blocks)
	return n, nil
}

// closeEarly undoes New after the host started: the DHTs, the
// reachability watcher and the host.
func (n *Node) closeEarly() {
	for _, d := range []*dht.IpfsDHT{n.dht, n.cdht} {
		if d != nil {
			_ = d.Close()
		}
	}
	_ = n.reachSub.Close()
	_ = n.host.Close()
}

// nowFunc lets the tracer read n.now after tests replace it.
func (n *Node) nowFunc() time.Time { return n.now() }

// newHost builds the libp2p host, with gate as its connection gater; on
// error nothing is left running.
func newHost(key crypto.PrivKey, cfg Config, gate coreconnmgr.ConnectionGater) (host.Host, error) {
	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, connmgr.WithGracePeriod(cfg.ConnGrace))
	if err != nil {
		return nil, fmt.Errorf("p2p: connection manager: %w", err)
	}
	rm, err := resourceManager(cfg)
	if err != nil {
		_ = cm.Close()
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.NoListenAddrs, // listen() below, which fails on any address that fails
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(gate),
		libp2p.ResourceManager(rm),
		libp2p.UserAgent(UserAgent),
		libp2p.WithDialTimeout(cfg.DialTimeout),
	}
	opts = append(opts, natOptions(cfg)...)
	if cfg.Metrics != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.Metrics))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	if len(cfg.Announce) > 0 {
		announce := make([]ma.Multiaddr, 0, len(cfg.Announce))
		for _, s := range cfg.Announce {
			a, err := ma.NewMultiaddr(s) // Validate parsed them already
			if err != nil {
				_ = cm.Close()
				_ = rm.Close()
				return nil, fmt.Errorf("p2p: announce %q: %w", s, err)
			}
			announce = append(announce, a)
		}
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return announce }))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		// libp2p.New closes what it built; ours were handed over only
		// if it got far enough, and closing twice is harmless.
		_ = cm.Close()
		_ = rm.Close()
		return nil, fmt.Errorf("p2p: start host: %w", err)
	}
	if err := listen(h, cfg.Listen); err != nil {
		_ = h.Close()
		_ = cm.Close()
		_ = rm.Close()
		return nil, err
	}
	return h, nil
}

// resourceManager is libp2p's default (auto-scaled to the machine, with
// the default service limits) with room for ConnHigh connections, so the
// connection manager, not the resource manager, decides how many peers we
// keep.
func resourceManager(cfg Config) (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	scaled := limits.AutoScale()
	partial := scaled.ToPartialLimitConfig()
	raise := func(l *rcmgr.LimitVal, want int) {
		if *l != rcmgr.Unlimited && int(*l) < want {
			*l = rcmgr.LimitVal(want)
		}
	}
	raise(&partial.System.Conns, 2*cfg.ConnHigh)
	raise(&partial.System.ConnsInbound, cfg.ConnHigh)
	raise(&partial.System.ConnsOutbound, cfg.ConnHigh)
	raise(&partial.System.FD, 2*cfg.ConnHigh)
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(partial.Build(scaled)))
}

// bootstrapPeers parses the (validated) bootstrap list, merging addresses
// of the same peer and dropping ourselves.
func bootstrapPeers(list []string, self peer.ID) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, s := range list {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil || ai.ID == self {
			continue
		}
		i := slices.IndexFunc(out, func(o peer.AddrInfo) bool { return o.ID == ai.ID })
		if i < 0 {
			out = append(out, *ai)
		} else {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
		}
	}
	return out
}

// Close stops Run, gossipsub, the DHT, bitswap and the host, in that order, and
// waits for Run to return. It is idempotent; later calls return the
// first call's result. Topics and subscriptions stop with it.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		close(n.done)
		n.runWG.Wait()
		n.psStop()
		errDHT := n.prov.stop()
		for _, d := range []*dht.IpfsDHT{n.dht, n.cdht} {
			if d != nil {
				errDHT = errors.Join(errDHT, d.Close()) // waits for the DHT's goroutines
			}
		}
		_ = n.reachSub.Close()        // ends watchReachability's goroutine
		n.guard.close()               // its disconnects use the host
		errBlocks := n.blocks.Close() // closes bitswap
		errHost := n.host.Close()     // closes connmgr, rcmgr, peerstore
		if err := errors.Join(errDHT, errBlocks, errHost); err != nil {
			n.closeErr = fmt.Errorf("p2p: close: %w", err)
		}
	})
	return n.closeErr
}

func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// ID returns the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Addrs returns the node's dialable addresses, each ending in /p2p/<ID>,
// in the form Config.Bootstrap takes.
func (n *Node) Addrs() []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// Host returns the libp2p host, for request/response protocols.
func (n *Node) Host() host.Host { return n.host }

// PubSub returns the gossipsub instance, for libraries that join topics
// themselves; call RegisterValidator for such a topic first.
func (n *Node) PubSub() *pubsub.PubSub { return n.ps }

// BlockService returns the block service over the configured blockstore
// and bitswap: reads try the blockstore, then ask connected peers.
func (n *Node) BlockService() blockservice.BlockService { return n.blocks }

// DAGService returns an IPLD DAG service over BlockService (dag-pb and raw
// nodes decode out of the box).
func (n *Node) DAGService() ipld.DAGService { return n.dag }

// Connect dials ai now, bounded by Config.DialTimeout. Run is not needed.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if n.isClosed() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.DialTimeout)
	defer cancel()
	if err := n.host.Connect(ctx, ai); err != nil {
		return fmt.Errorf("connect to %s: %w", ai.ID, err)
	}
	return nil
}

// PeerInfo describes one connected peer for status displays.
type PeerInfo struct {
	ID peer.ID
	// Addrs are the remote addresses of our open connections to it.
	Addrs []ma.Multiaddr
	// Bootstrap is true for peers from Config.Bootstrap.
	Bootstrap bool
}

// Peers returns the connected peers, sorted by ID.
func (n *Node) Peers() []PeerInfo {
	ids := n.host.Network().Peers()
	slices.Sort(ids)
	out := make([]PeerInfo, 0, len(ids))
	for _, id := range ids {
		p := PeerInfo{ID: id, Bootstrap: n.isBootstrap(id)}
		for _, c := range n.host.Network().ConnsToPeer(id) {
			p.Addrs = append(p.Addrs, c.RemoteMultiaddr())
		}
		out = append(out, p)
	}
	return out
}

func (n *Node) isBootstrap(id peer.ID) bool {
	return slices.ContainsFunc(n.bootstrap, func(ai peer.AddrInfo) bool { return ai.ID == id })
}

// ConnectedTo reports whether the node has an open connection to id.
func (n *Node) ConnectedTo(id peer.ID) bool {
	return n.host.Network().Connectedness(id) == network.Connected
}

// Remembered returns the peers the node would dial on restart, most
// recently connected first, from the peers file and this run.
func (n *Node) Remembered() []peer.AddrInfo {
	if n.mem == nil {
		return nil
	}
	var out []peer.AddrInfo
	for _, r := range n.mem.list() {
		out = append(out, peer.AddrInfo{ID: r.ID, Addrs: r.Addrs})
	}
	return out
}

// Rejections returns the recent refused-message entries, oldest first:
// one per (peer, topic, reason), at most Config.Rejections.
func (n *Node) Rejections() []Rejection { return n.rej.list() }

// RejectionCounts returns how many messages were refused per reason label
// since New (see Rejection.Label).
func (n *Node) RejectionCounts() map[string]uint64 { return n.rej.counts() }

// DroppedRPCs returns how many outbound gossipsub RPCs were dropped
// because a peer's send queue was full.
func (n *Node) DroppedRPCs() uint64 { return n.rej.dropped.Load() }

// BitswapTraffic returns the content bytes bitswap received and sent
// since the node started (0, 0 once closed).
func (n *Node) BitswapTraffic() (received, sent uint64) {
	st, err := n.bs.Stat()
	if err != nil {
		return 0, 0
	}
	return st.DataReceived, st.DataSent
}
