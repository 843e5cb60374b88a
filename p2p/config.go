package p2p

import (
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/boxo/blockstore"
	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// Config sets up one Node. Start from DefaultConfig; Validate checks it
// without changing it. The JSON form (see MarshalJSON) writes durations as
// "30s" and sizes as "1MiB"; Blockstore and Metrics are runtime objects and
// are never written.
type Config struct {
	// Listen lists the multiaddrs the host listens on. Only TCP and QUIC
	// (quic-v1) over IPv4 or IPv6 are accepted; port 0 picks a free port.
	// Default: /ip4/0.0.0.0/tcp/4050 and /ip4/0.0.0.0/udp/4050/quic-v1.
	Listen []string

	// Announce, when not empty, replaces the addresses the host advertises
	// to peers (identify) with these: for a host behind a port forward that
	// knows its public address. Default: empty (advertise what we listen on).
	Announce []string

	// Bootstrap lists peers to stay connected to, as multiaddrs ending in
	// /p2p/<peer ID>: curators or other well-known cluster peers. Run keeps
	// redialling them with backoff and the connection manager never trims
	// them. Default: empty (there is no public bootstrap list).
	Bootstrap []string

	// PeersFile is the path of the file where the node remembers the
	// addresses of peers it has been connected to (JSON, written
	// atomically). On start those peers are dialled like bootstrap peers,
	// so a restart finds the cluster without the bootstrap list.
	// Default: "" (remember nothing); services set it inside their data folder.
	PeersFile string

	// RememberPeers bounds how many peers the peers file holds; the least
	// recently connected are forgotten first. Default: 256.
	RememberPeers int

	// SavePeersEvery is how often Run writes the peers file when it
	// changed; it is also written when Run stops. Default: 1m.
	SavePeersEvery time.Duration

	// ConnLow and ConnHigh are the connection manager's watermarks: above
	// ConnHigh connections it trims back down to ConnLow, sparing
	// bootstrap peers and connections younger than ConnGrace.
	// Defaults: 100, 400, 1m.
	ConnLow   int
	ConnHigh  int
	ConnGrace time.Duration

	// DialTimeout bounds one dial attempt to one peer. Default: 15s.
	DialTimeout time.Duration

	// ReconnectMin and ReconnectMax bound the backoff between dials of a
	// bootstrap or remembered peer that is not connected: the wait starts
	// at ReconnectMin and doubles per failure up to ReconnectMax (±20%
	// jitter). Defaults: 1s, 5m.
	ReconnectMin time.Duration
	ReconnectMax time.Duration

	// KeepReconnectMax caps that backoff for the peers the node keeps:
	// bootstrap peers, and members (SetMembers) once a connection to them
	// has succeeded, so a partition that heals is noticed within seconds.
	// Members never reached back off up to ReconnectMax, so addresses a
	// member claims cannot make the node dial a stranger every few
	// seconds. ReconnectMax still caps it. It also bounds each redial of
	// such a peer after a failure (DialTimeout bounds the first): a dial
	// into a network that drops packets hangs until its timeout.
	// Default: 5s.
	KeepReconnectMax time.Duration

	// KeepMembers bounds how many cluster members (SetMembers) Run keeps
	// connections to, besides the bootstrap peers; 0 keeps none.
	// Default: 8.
	KeepMembers int

	// MaxParallelDials bounds how many peers Run dials at once. Default: 8.
	MaxParallelDials int

	// Relay enables the circuit relay v2 transport (dial and accept
	// connections through relays). Default: false.
	Relay bool

	// HolePunching enables DCUtR hole punching; it needs Relay.
	// Default: false.
	HolePunching bool

	// NATPortMap asks the router for a port mapping (UPnP, NAT-PMP).
	// Default: false.
	NATPortMap bool

	// StaticRelays lists circuit relay v2 relays (multiaddrs ending in
	// /p2p/<peer ID>, usually the curators) on which the node reserves a
	// slot while AutoNAT finds it not publicly reachable, so that peers
	// reach it through them (AutoRelay). It needs Relay. Default: empty.
	StaticRelays []string

	// RelayService makes the node a circuit relay v2 for other peers,
	// within RelayLimits. Default: false.
	RelayService bool

	// RelayLimits bounds what the relay service gives; see RelayLimits.
	RelayLimits RelayLimits

	// AutoNATService answers other peers' AutoNAT probes (dials them back
	// to tell them whether they are reachable), rate limited. A node that
	// runs a relay service for NATed peers should run it too, so that they
	// learn they are not reachable. Default: false.
	AutoNATService bool

	// ForceReachability skips AutoNAT's guess: "public" or "private";
	// "" (the default) lets AutoNAT decide.
	ForceReachability string

	// MaxMessageSize is gossipsub's limit on one RPC on the wire; a
	// topic's payload limit must leave room for the envelope (signature,
	// key, topic name): see TopicOverhead. Default: 1MiB.
	MaxMessageSize int

	// PeerExchange lets gossipsub send and accept peer lists when pruning
	// a mesh (PX). Default: false: peers come from config and memory only.
	PeerExchange bool

	// FloodPublish makes our own messages go to every topic peer instead
	// of the mesh: faster, but a large message is sent once per peer.
	// Default: false.
	FloodPublish bool

	// SubscriptionBuffer is the number of received messages a subscription
	// queues for a slow reader before gossipsub drops new ones (and the
	// drop is recorded as a rejection). Default: 256.
	SubscriptionBuffer int

	// ValidateTimeout bounds one call of a topic validator; past it the
	// context passed to the validator is cancelled. Default: 10s.
	ValidateTimeout time.Duration

	// RatePerSecond and RateBurst set each topic's per-peer token bucket:
	// a peer may send RateBurst messages at once, refilled at
	// RatePerSecond. The peer is the forwarding peer (ReceivedFrom), so
	// the limit must allow what an honest relay forwards for others.
	// Defaults: 100/s, burst 1000.
	RatePerSecond float64
	RateBurst     int

	// Rejections is how many distinct (peer, topic, reason) rejections
	// Rejections() keeps, newest last. Default: 256.
	Rejections int

	// Bitswap tunes content exchange; see BitswapConfig.
	Bitswap BitswapConfig

	// DHT sets up the optional Kademlia DHT; see DHTConfig. Default: off.
	DHT DHTConfig

	// ClusterDHT sets up a second DHT, private to the cluster (its own
	// ProtocolPrefix), that only carries provider records: which member
	// holds which root. Default: off.
	ClusterDHT DHTConfig

	// Provide tunes the announcements of held roots; see ProvideConfig.
	Provide ProvideConfig
	// Bandwidth bounds bitswap's upload and download; see
	// BandwidthConfig. Default: unlimited.
	Bandwidth BandwidthConfig

	// Blockstore holds the blocks bitswap serves and stores what it
	// fetches. Required by New; never written to JSON.
	Blockstore blockstore.Blockstore

	// Datastore, when not nil, holds the provider records a DHT server
	// stores for others and the keystore of the roots the node announces;
	// nil keeps them in memory. Never written to JSON.
	Datastore ds.Batching

	// Metrics receives libp2p's and this package's Prometheus metrics.
	// nil disables metrics. Never the global registry unless passed in.
	Metrics prometheus.Registerer
}

// BitswapConfig tunes bitswap for catching up on many small blocks from a
// few known peers (bitswap asks connected peers first, then holders found
// in a DHT when one runs). Boxo v0.43 sends at most one want message per peer every 20 ms
// (a constant), so a client walking a chain one block at a time needs at
// least 20 ms per block whatever these say: fetch many CIDs per call.
type BitswapConfig struct {
	// SearchDelay is how long a session waits without receiving a block
	// before asking every connected peer again (boxo's provider search
	// delay; there is no provider search here). Default: 250ms (boxo: 1s).
	SearchDelay time.Duration

	// RebroadcastDelay is how often a session re-asks every connected peer
	// for one random pending want. Default: 10s (boxo: 1m).
	RebroadcastDelay time.Duration

	// TargetMessageSize is how many bytes of blocks the server packs into
	// one message. Default: 256KiB (boxo: 16KiB). Measured on loopback
	// (1,000 blocks of 1 KiB deleted and fetched again with one GetMany):
	// at 16KiB, 13 of 20 rounds lost 16 to 48 blocks that bitswap never
	// re-requested (the fetch hung until its context ended); at 256KiB,
	// 0 of 40 rounds stalled and each took about 60 ms. The cause inside
	// boxo is not identified; larger messages may only make it rarer.
	TargetMessageSize int

	// PerPeerSendDelay scales the pause between want messages by the
	// number of peers bitswap talks to (pause = max(20ms, peers × this)).
	// Default: 50µs, so up to 400 peers stay at the 20 ms floor (boxo:
	// 125µs, 50 ms at 400 peers).
	PerPeerSendDelay time.Duration

	// PromiseTimeout is how long a peer sent a want-block (after it
	// claimed the block with HAVE) may leave it unanswered, neither the
	// block nor DONT_HAVE, before it is penalised as a liar, if it sent
	// us nothing else it was asked for meanwhile. Boxo itself gives up on
	// such a want after at most 7s. Default: 5s.
	PromiseTimeout time.Duration

	// Penalty is how long a peer caught lying over bitswap (unwanted
	// blocks, that is wrong bytes, or broken promises) stays disconnected
	// and refused; each further penalty of the same peer doubles it, up to
	// 64 times. Default: 2m.
	Penalty time.Duration
}

// TopicOverhead is the room a topic's payload limit leaves under
// MaxMessageSize for the gossipsub envelope: signature, public key, topic
// name, sequence number and protobuf framing.
const TopicOverhead = 2 << 10

// Bounds checked by Validate.
const (
	maxListen        = 16
	maxBootstrap     = 1024
	maxRememberPeers = 10000
	maxKeepMembers   = 256
	minMessageSize   = 8 << 10
	maxMessageSize   = 64 << 20
	maxBitswapMsg    = 2 << 20 // boxo's network refuses messages over 4MiB
)

// DefaultConfig returns the production defaults. Tests replace Listen with
// 127.0.0.1 and port 0.
func DefaultConfig() Config {
	return Config{
		Listen:             []string{"/ip4/0.0.0.0/tcp/4050", "/ip4/0.0.0.0/udp/4050/quic-v1"},
		RememberPeers:      256,
		SavePeersEvery:     time.Minute,
		ConnLow:            100,
		ConnHigh:           400,
		ConnGrace:          time.Minute,
		DialTimeout:        15 * time.Second,
		ReconnectMin:       time.Second,
		ReconnectMax:       5 * time.Minute,
		KeepReconnectMax:   5 * time.Second,
		KeepMembers:        8,
		MaxParallelDials:   8,
		MaxMessageSize:     1 << 20,
		SubscriptionBuffer: 256,
		ValidateTimeout:    10 * time.Second,
		RatePerSecond:      100,
		RateBurst:          1000,
		Rejections:         256,
		Bitswap: BitswapConfig{
			SearchDelay:       250 * time.Millisecond,
			RebroadcastDelay:  10 * time.Second,
			TargetMessageSize: 256 << 10,
			PerPeerSendDelay:  50 * time.Microsecond,
			PromiseTimeout:    5 * time.Second,
			Penalty:           2 * time.Minute,
		},
		DHT:         DefaultDHTConfig(),
		ClusterDHT:  DefaultDHTConfig(),
		RelayLimits: DefaultRelayLimits(),
		Provide:     DefaultProvideConfig(),
	}
}

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: p2p.%s %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}

// Validate reports the first field out of range, naming it by its config
// path (p2p.listen[0], p2p.conn_high). It changes nothing. It does not
// check Blockstore or Metrics.
func (c *Config) Validate() error {
	if len(c.Listen) == 0 {
		return invalid("listen", "is empty; want at least one TCP or QUIC address")
	}
	if len(c.Listen) > maxListen {
		return invalid("listen", "has %d addresses; at most %d", len(c.Listen), maxListen)
	}
	for i, s := range c.Listen {
		if err := checkTransportAddr(s); err != nil {
			return invalid(fmt.Sprintf("listen[%d]", i), "%q: %v", s, err)
		}
	}
	if len(c.Announce) > maxListen {
		return invalid("announce", "has %d addresses; at most %d", len(c.Announce), maxListen)
	}
	for i, s := range c.Announce {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return invalid(fmt.Sprintf("announce[%d]", i), "%q: %v", s, err)
		}
	}
	if len(c.Bootstrap) > maxBootstrap {
		return invalid("bootstrap", "has %d peers; at most %d", len(c.Bootstrap), maxBootstrap)
	}
	for i, s := range c.Bootstrap {
		if _, err := peer.AddrInfoFromString(s); err != nil {
			return invalid(fmt.Sprintf("bootstrap[%d]", i), "%q: want a multiaddr ending in /p2p/<peer ID>: %v", s, err)
		}
	}
	if c.RememberPeers < 0 || c.RememberPeers > maxRememberPeers {
		return invalid("remember_peers", "is %d; want 0 to %d", c.RememberPeers, maxRememberPeers)
	}
	if c.SavePeersEvery <= 0 {
		return invalid("save_peers_every", "is %s; want > 0", c.SavePeersEvery)
	}
	if c.ConnLow < 1 {
		return invalid("conn_low", "is %d; want >= 1", c.ConnLow)
	}
	if c.ConnHigh <= c.ConnLow {
		return invalid("conn_high", "is %d; want > conn_low (%d)", c.ConnHigh, c.ConnLow)
	}
	if c.ConnGrace < 0 {
		return invalid("conn_grace", "is %s; want >= 0", c.ConnGrace)
	}
	if c.DialTimeout <= 0 {
		return invalid("dial_timeout", "is %s; want > 0", c.DialTimeout)
	}
	if c.ReconnectMin <= 0 {
		return invalid("reconnect_min", "is %s; want > 0", c.ReconnectMin)
	}
	if c.ReconnectMax < c.ReconnectMin {
		return invalid("reconnect_max", "is %s; want >= reconnect_min (%s)", c.ReconnectMax, c.ReconnectMin)
	}
	if c.KeepReconnectMax < c.ReconnectMin {
		return invalid("keep_reconnect_max", "is %s; want >= reconnect_min (%s)", c.KeepReconnectMax, c.ReconnectMin)
	}
	if c.KeepMembers < 0 || c.KeepMembers > maxKeepMembers {
		return invalid("keep_members", "is %d; want 0 to %d", c.KeepMembers, maxKeepMembers)
	}
	if c.MaxParallelDials < 1 {
		return invalid("max_parallel_dials", "is %d; want >= 1", c.MaxParallelDials)
	}
	if c.HolePunching && !c.Relay {
		return invalid("hole_punching", "needs p2p.relay: hole punching coordinates over a relayed connection")
	}
	if err := c.validateNAT(); err != nil {
		return err
	}
	if c.MaxMessageSize < minMessageSize || c.MaxMessageSize > maxMessageSize {
		return invalid("max_message_size", "is %s; want %s to %s",
			sizeString(c.MaxMessageSize), sizeString(minMessageSize), sizeString(maxMessageSize))
	}
	if c.SubscriptionBuffer < 1 {
		return invalid("subscription_buffer", "is %d; want >= 1", c.SubscriptionBuffer)
	}
	if c.ValidateTimeout <= 0 {
		return invalid("validate_timeout", "is %s; want > 0", c.ValidateTimeout)
	}
	if !(c.RatePerSecond > 0) { // also rejects NaN
		return invalid("rate_per_second", "is %v; want > 0", c.RatePerSecond)
	}
	if c.RateBurst < 1 {
		return invalid("rate_burst", "is %d; want >= 1", c.RateBurst)
	}
	if c.Rejections < 0 {
		return invalid("rejections", "is %d; want >= 0", c.Rejections)
	}
	if err := c.Bandwidth.validate(); err != nil {
		return err
	}
	b := c.Bitswap
	if b.SearchDelay <= 0 {
		return invalid("bitswap.search_delay", "is %s; want > 0", b.SearchDelay)
	}
	if b.RebroadcastDelay <= 0 {
		return invalid("bitswap.rebroadcast_delay", "is %s; want > 0", b.RebroadcastDelay)
	}
	if b.TargetMessageSize < 1<<10 || b.TargetMessageSize > maxBitswapMsg {
		return invalid("bitswap.target_message_size", "is %s; want 1KiB to %s",
			sizeString(b.TargetMessageSize), sizeString(maxBitswapMsg))
	}
	if b.PerPeerSendDelay <= 0 {
		return invalid("bitswap.per_peer_send_delay", "is %s; want > 0", b.PerPeerSendDelay)
	}
	if b.PromiseTimeout < 100*time.Millisecond {
		return invalid("bitswap.promise_timeout", "is %s; want >= 100ms", b.PromiseTimeout)
	}
	if b.Penalty <= 0 {
		return invalid("bitswap.penalty", "is %s; want > 0", b.Penalty)
	}
	if err := c.DHT.validate("dht"); err != nil {
		return err
	}
	if err := c.ClusterDHT.validate("cluster_dht"); err != nil {
		return err
	}
	return c.Provide.validate()
}

// checkTransportAddr accepts /ip4|ip6/<ip>/tcp/<port> and
// /ip4|ip6/<ip>/udp/<port>/quic-v1.
func checkTransportAddr(s string) error {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return err
	}
	var codes []string
	for _, c := range a {
		codes = append(codes, c.Protocol().Name)
	}
	switch strings.Join(codes, "/") {
	case "ip4/tcp", "ip6/tcp", "ip4/udp/quic-v1", "ip6/udp/quic-v1":
		return nil
	}
	return fmt.Errorf("want /ip4|ip6/<ip>/tcp/<port> or /ip4|ip6/<ip>/udp/<port>/quic-v1")
}
