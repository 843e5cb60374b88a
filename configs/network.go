package configs

import (
	"net/netip"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/pinfold/pinfold/p2p"
)

// Network is what a member's config says about its libp2p host beyond
// the listen addresses: NAT traversal and the two DHTs.
type Network struct {
	ClusterID string   // the cluster's ID: names the cluster DHT
	Relays    []string // the cluster's curators (its bootstrap list)
	Listen    []string
	NAT       NAT
	Cluster   ClusterDHT
	DHT       DHT
}

// Apply sets cfg's DHT, cluster DHT, provide, relay, hole punching, port
// mapping and AutoNAT fields. NAT traversal stays off on a host that
// listens on loopback only (no router stands between it and its peers);
// Apply reports whether traversal is on.
func (n Network) Apply(cfg *p2p.Config) (traversal bool) {
	cfg.DHT = p2p.DHTConfig{Mode: p2p.DHTMode(n.DHT.Mode), Bootstrap: n.DHT.Bootstrap, ProtocolPrefix: n.DHT.ProtocolPrefix}
	cfg.ClusterDHT = p2p.DHTConfig{Mode: p2p.DHTMode(n.Cluster.Mode), ProtocolPrefix: ClusterDHTPrefix(n.ClusterID)}
	cfg.Provide.Interval = time.Duration(n.Cluster.ProvideInterval)
	cfg.ForceReachability = n.NAT.Reachability
	if n.NAT.RelayService {
		cfg.RelayService = true
		cfg.AutoNATService = true
	}
	if !n.NAT.Traversal || loopbackOnly(n.Listen) {
		return false
	}
	cfg.Relay = true
	cfg.HolePunching = true
	cfg.NATPortMap = n.NAT.PortMap
	cfg.StaticRelays = n.Relays
	return true
}

// loopbackOnly reports whether every listen address is a loopback one.
func loopbackOnly(listen []string) bool {
	for _, s := range listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return false
		}
		ip, err := manet.ToIP(a)
		if err != nil {
			return false
		}
		addr, ok := netip.AddrFromSlice(ip)
		if !ok || !addr.Unmap().IsLoopback() {
			return false
		}
	}
	return len(listen) > 0
}
