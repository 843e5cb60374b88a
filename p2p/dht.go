package p2p

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/boxo/ipns"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"
)

// DHTMode says whether and how the node takes part in a Kademlia DHT.
type DHTMode string

const (
	// DHTOff runs no DHT (the default).
	DHTOff DHTMode = "off"
	// DHTClient queries and stores through DHT servers, serves nothing.
	DHTClient DHTMode = "client"
	// DHTServer also answers other peers' queries and stores their records.
	DHTServer DHTMode = "server"
	// DHTAuto is a client that becomes a server while libp2p finds the
	// node publicly reachable.
	DHTAuto DHTMode = "auto"
)

// DHTConfig sets up the optional DHT (go-libp2p-kad-dht). The DHT holds
// IPNS records (namespace "ipns", checked by boxo's ipns.Validator) and
// public keys ("pk"), as the IPFS DHT does.
type DHTConfig struct {
	// Mode is off, client, server or auto. Default: off.
	Mode DHTMode

	// Bootstrap lists DHT peers, as multiaddrs ending in /p2p/<peer ID>,
	// dialled when the routing table is empty. Peers the node is connected
	// to anyway (Config.Bootstrap, remembered peers) join the routing
	// table when they run a DHT server with the same protocol prefix.
	// Default: empty. There is no public default: to use the IPFS DHT,
	// list its bootstrap peers here.
	Bootstrap []string

	// ProtocolPrefix names the DHT: peers only talk to DHTs with the same
	// prefix (the protocol is <prefix>/kad/1.0.0). "/ipfs" is the public
	// IPFS (Amino) DHT; a private network uses its own, e.g. "/pinfold".
	// Default: "/ipfs".
	ProtocolPrefix string
}

// DefaultDHTConfig returns the DHT defaults: off, no bootstrap peers, the
// IPFS protocol prefix.
func DefaultDHTConfig() DHTConfig {
	return DHTConfig{Mode: DHTOff, ProtocolPrefix: string(dht.DefaultPrefix)}
}

// maxProtocolPrefix bounds DHTConfig.ProtocolPrefix.
const maxProtocolPrefix = 128

func (c *DHTConfig) validate(field string) error {
	switch c.Mode {
	case DHTOff, DHTClient, DHTServer, DHTAuto:
	default:
		return invalid(field+".mode", "is %q; want off, client, server or auto", c.Mode)
	}
	if len(c.Bootstrap) > maxBootstrap {
		return invalid(field+".bootstrap", "has %d peers; at most %d", len(c.Bootstrap), maxBootstrap)
	}
	for i, s := range c.Bootstrap {
		if _, err := peer.AddrInfoFromString(s); err != nil {
			return invalid(fmt.Sprintf("%s.bootstrap[%d]", field, i), "%q: want a multiaddr ending in /p2p/<peer ID>: %v", s, err)
		}
	}
	p := c.ProtocolPrefix
	switch {
	case !strings.HasPrefix(p, "/") || len(p) < 2:
		return invalid(field+".protocol_prefix", "is %q; want a path like /ipfs or /pinfold", p)
	case strings.HasSuffix(p, "/"):
		return invalid(field+".protocol_prefix", "is %q; want no trailing slash", p)
	case len(p) > maxProtocolPrefix:
		return invalid(field+".protocol_prefix", "is %d bytes long; at most %d", len(p), maxProtocolPrefix)
	case strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return invalid(field+".protocol_prefix", "%q holds a space or control character", p)
	}
	return nil
}

// dhtValidator checks what the DHT stores and returns: IPNS records under
// /ipns/ and public keys under /pk/, nothing else. The IPNS validator
// checks the signature against the name, the record's shape and its EOL
// (against the wall clock).
func dhtValidator(h host.Host) record.NamespacedValidator {
	return record.NamespacedValidator{
		"pk":   record.PublicKeyValidator{},
		"ipns": ipns.Validator{KeyBook: h.Peerstore()},
	}
}

// newDHT starts the DHT cfg asks for on h; nil when it is off. Its
// goroutines run until Close.
//
// No address, query or routing-table filter is set: kad-dht's own
// defaults (outside its dual package) keep every address, so LAN and
// loopback peers are usable, which a private cluster needs. No public
// bootstrap peer is ever added.
func newDHT(h host.Host, cfg DHTConfig, val record.Validator, store ds.Batching, ns string) (*dht.IpfsDHT, error) {
	var mode dht.ModeOpt
	switch cfg.Mode {
	case DHTOff:
		return nil, nil
	case DHTClient:
		mode = dht.ModeClient
	case DHTServer:
		mode = dht.ModeServer
	case DHTAuto:
		mode = dht.ModeAuto
	}
	opts := []dht.Option{
		dht.Mode(mode),
		dht.ProtocolPrefix(protocol.ID(cfg.ProtocolPrefix)),
		dht.Validator(val),
	}
	if store != nil {
		opts = append(opts, dht.Datastore(namespace.Wrap(store, ds.NewKey(ns))))
	}
	if peers := bootstrapPeers(cfg.Bootstrap, h.ID()); len(peers) > 0 {
		opts = append(opts, dht.BootstrapPeers(peers...))
	}
	d, err := dht.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: start dht: %w", err)
	}
	return d, nil
}

// DHTEnabled reports whether the node runs a DHT (Config.DHT.Mode is not
// off).
func (n *Node) DHTEnabled() bool { return n.dht != nil }

// PutRecord stores the marshalled IPNS record raw under name in the DHT:
// in the node's own record store, then at the closest DHT servers. It
// first checks raw with the DHT's validator (ErrRecordInvalid), as every
// receiving server does again. It fails with ErrDHTDisabled when the DHT
// is off, and with an error naming the lookup when no DHT peer is known
// (the record is then kept locally only; a DHT server serves it from
// there). A nil error does not mean any remote peer accepted the record:
// kad-dht only logs refusals by individual peers.
func (n *Node) PutRecord(ctx context.Context, name ipns.Name, raw []byte) error {
	if n.dht == nil {
		return ErrDHTDisabled
	}
	if n.isClosed() {
		return ErrClosed
	}
	key := string(name.RoutingKey())
	if err := n.dhtVal.Validate(key, raw); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrRecordInvalid, name, err)
	}
	if err := n.dht.PutValue(ctx, key, raw); err != nil {
		return fmt.Errorf("p2p: dht put %s: %w", name, err)
	}
	return nil
}

// GetRecord asks the DHT for the best IPNS record of name: the node's own
// store and the closest DHT servers. What it returns passed boxo's
// ipns.Validator (signature, shape, EOL) and was the best by its Select;
// callers verify it with their own rules all the same. It fails with
// ErrDHTDisabled when the DHT is off and wraps ErrRecordNotFound when no
// peer had a valid record.
func (n *Node) GetRecord(ctx context.Context, name ipns.Name) ([]byte, error) {
	if n.dht == nil {
		return nil, ErrDHTDisabled
	}
	if n.isClosed() {
		return nil, ErrClosed
	}
	raw, err := n.dht.GetValue(ctx, string(name.RoutingKey()))
	switch {
	case errors.Is(err, routing.ErrNotFound):
		return nil, fmt.Errorf("%w: %s", ErrRecordNotFound, name)
	case err != nil:
		return nil, fmt.Errorf("p2p: dht get %s: %w", name, err)
	}
	return raw, nil
}

// DHTPeers returns how many peers are in the DHT routing table (0 when
// the DHT is off).
func (n *Node) DHTPeers() int {
	if n.dht == nil {
		return 0
	}
	return n.dht.RoutingTable().Size()
}
