package p2p

import (
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// RelayLimits bound the circuit relay v2 service (Config.RelayService).
// A relayed connection is for reaching a NATed peer and upgrading to a
// direct one (DCUtR), not for moving content: bitswap never opens streams
// on a limited (relayed) connection.
type RelayLimits struct {
	// Reservations is how many peers may hold a slot at once.
	// Default: 128.
	Reservations int
	// CircuitsPerPeer bounds the relayed connections open at once to or
	// from one peer. Default: 16.
	CircuitsPerPeer int
	// Duration bounds one relayed connection. Default: 2m.
	Duration time.Duration
	// Data bounds the bytes relayed in each direction of one relayed
	// connection. Default: 1MiB.
	Data int64
}

// DefaultRelayLimits returns the relay service's defaults.
func DefaultRelayLimits() RelayLimits {
	return RelayLimits{Reservations: 128, CircuitsPerPeer: 16, Duration: 2 * time.Minute, Data: 1 << 20}
}

// Bounds on RelayLimits.
const (
	maxRelayReservations = 1 << 16
	maxRelayCircuits     = 1024
	maxRelayData         = 1 << 30
)

func (c *Config) validateNAT() error {
	if len(c.StaticRelays) > 0 && !c.Relay {
		return invalid("static_relays", "needs p2p.relay: reserving a slot on a relay uses the relay transport")
	}
	if len(c.StaticRelays) > maxBootstrap {
		return invalid("static_relays", "has %d peers; at most %d", len(c.StaticRelays), maxBootstrap)
	}
	for i, s := range c.StaticRelays {
		if _, err := peer.AddrInfoFromString(s); err != nil {
			return invalid(fmt.Sprintf("static_relays[%d]", i), "%q: want a multiaddr ending in /p2p/<peer ID>: %v", s, err)
		}
	}
	switch c.ForceReachability {
	case "", "public", "private":
	default:
		return invalid("force_reachability", "is %q; want \"\", public or private", c.ForceReachability)
	}
	l := c.RelayLimits
	switch {
	case l.Reservations < 1 || l.Reservations > maxRelayReservations:
		return invalid("relay_limits.reservations", "is %d; want 1 to %d", l.Reservations, maxRelayReservations)
	case l.CircuitsPerPeer < 1 || l.CircuitsPerPeer > maxRelayCircuits:
		return invalid("relay_limits.circuits_per_peer", "is %d; want 1 to %d", l.CircuitsPerPeer, maxRelayCircuits)
	case l.Duration < time.Second:
		return invalid("relay_limits.duration", "is %s; want >= 1s", l.Duration)
	case l.Data < 1<<10 || l.Data > maxRelayData:
		return invalid("relay_limits.data", "is %d bytes; want 1KiB to 1GiB", l.Data)
	}
	return nil
}

// natOptions are the libp2p options for relaying, hole punching, port
// mapping and AutoNAT that cfg asks for.
func natOptions(cfg Config) []libp2p.Option {
	var opts []libp2p.Option
	if cfg.Relay {
		opts = append(opts, libp2p.EnableRelay())
	} else {
		opts = append(opts, libp2p.DisableRelay())
	}
	if relays := bootstrapPeers(cfg.StaticRelays, ""); len(relays) > 0 {
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(relays))
	}
	if cfg.HolePunching {
		opts = append(opts, libp2p.EnableHolePunching())
	}
	if cfg.NATPortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	if cfg.RelayService {
		l := cfg.RelayLimits
		rc := relayv2.DefaultResources()
		rc.MaxReservations = l.Reservations
		rc.MaxCircuits = l.CircuitsPerPeer
		rc.Limit = &relayv2.RelayLimit{Duration: l.Duration, Data: l.Data}
		opts = append(opts, libp2p.EnableRelayService(relayv2.WithResources(rc)))
	}
	if cfg.AutoNATService {
		opts = append(opts, libp2p.EnableNATService(), libp2p.AutoNATServiceRateLimit(60, 3, time.Minute))
	}
	switch cfg.ForceReachability {
	case "public":
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case "private":
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	return opts
}

// reachability follows the host's AutoNAT verdicts.
type reachability struct {
	mu    sync.Mutex
	r     network.Reachability
	since time.Time
}

// watchReachability records each EvtLocalReachabilityChanged of h until
// the subscription is closed (by Close, through the host); the goroutine
// belongs to the Node.
func (n *Node) watchReachability() error {
	sub, err := n.host.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		return fmt.Errorf("p2p: subscribe to reachability: %w", err)
	}
	n.reach.since = n.now()
	n.reachSub = sub
	go func() {
		for e := range sub.Out() {
			ev := e.(event.EvtLocalReachabilityChanged)
			n.reach.mu.Lock()
			n.reach.r, n.reach.since = ev.Reachability, n.now()
			n.reach.mu.Unlock()
			n.log.Info("reachability changed", "reachability", ev.Reachability.String())
		}
	}()
	return nil
}

// NATStatus says how other peers can reach the node.
type NATStatus struct {
	// Reachability is AutoNAT's verdict: "public", "private" or "unknown"
	// (not yet probed, or no AutoNAT server answered).
	Reachability string
	// Since is when Reachability last changed (or the node started).
	Since time.Time
	// PublicAddrs are the node's advertised addresses that are publicly
	// routable (observed through identify, mapped by the router or
	// listened on).
	PublicAddrs []string
	// RelayAddrs are the /p2p-circuit addresses of relays the node holds a
	// reservation on: peers reach it through them.
	RelayAddrs []string
	// Direct and Relayed count the peers connected directly and those
	// connected only through a relay.
	Direct, Relayed int
	// Relay, HolePunching, PortMap and RelayService echo the config.
	Relay, HolePunching, PortMap, RelayService bool
}

// NATStatus returns how reachable the node is.
func (n *Node) NATStatus() NATStatus {
	n.reach.mu.Lock()
	st := NATStatus{Reachability: reachString(n.reach.r), Since: n.reach.since}
	n.reach.mu.Unlock()
	st.Relay, st.HolePunching, st.PortMap, st.RelayService = n.cfg.Relay, n.cfg.HolePunching, n.cfg.NATPortMap, n.cfg.RelayService
	for _, a := range n.host.Addrs() {
		switch {
		case isRelayed(a):
			st.RelayAddrs = append(st.RelayAddrs, a.String())
		case manet.IsPublicAddr(a):
			st.PublicAddrs = append(st.PublicAddrs, a.String())
		}
	}
	st.Direct, st.Relayed = connKinds(n.host)
	return st
}

// DirectlyConnected reports whether the node has a connection to p that
// does not go through a relay.
func (n *Node) DirectlyConnected(p peer.ID) bool {
	for _, c := range n.host.Network().ConnsToPeer(p) {
		if !isRelayed(c.RemoteMultiaddr()) {
			return true
		}
	}
	return false
}

func connKinds(h host.Host) (direct, relayed int) {
	for _, p := range h.Network().Peers() {
		d := false
		for _, c := range h.Network().ConnsToPeer(p) {
			if !isRelayed(c.RemoteMultiaddr()) {
				d = true
				break
			}
		}
		if d {
			direct++
		} else {
			relayed++
		}
	}
	return direct, relayed
}

func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

func reachString(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// Advice is one line telling a volunteer what its NATStatus means and
// what to do about it.
func (s NATStatus) Advice() string {
	switch {
	case s.Reachability == "public":
		return "reachable directly"
	case len(s.RelayAddrs) > 0 && s.HolePunching:
		return "reachable through a relay; peers upgrade to a direct connection by hole punching when the NAT allows it"
	case len(s.RelayAddrs) > 0:
		return "reachable through a relay only; turn on hole punching for direct connections"
	case s.Reachability == "private" && !s.Relay:
		return "not reachable: NAT traversal is off; turn it on (nat.traversal) or forward the listen port on the router and set announce"
	case s.Reachability == "private":
		return "not reachable yet: no relay reservation; check that a curator is connected, or forward the listen port on the router"
	}
	return "reachability not known yet (AutoNAT needs a connected curator to probe); peers can dial the listen addresses if the network allows"
}
