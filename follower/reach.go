package follower

import (
	"context"
	"time"
)

// ReachInfo says whether other members and IPFS nodes can reach this
// volunteer, and what to do when they cannot.
type ReachInfo struct {
	// Traversal is whether NAT traversal runs (config nat.traversal, and
	// not listening on loopback only).
	Traversal bool `json:"traversal"`
	// Reachability is AutoNAT's verdict: public, private or unknown.
	Reachability string    `json:"reachability"`
	Since        time.Time `json:"since"`
	// PublicAddrs are publicly routable addresses peers can dial;
	// RelayAddrs the relayed ones (a slot held on a relay).
	PublicAddrs []string `json:"public_addrs,omitempty"`
	RelayAddrs  []string `json:"relay_addrs,omitempty"`
	// Direct and Relayed count the connected peers by kind of connection.
	Direct  int `json:"direct"`
	Relayed int `json:"relayed"`
	// Advice is one line on what this means and what to do.
	Advice string `json:"advice"`
}

// ProvideInfo is how many held roots are announced, per DHT.
type ProvideInfo struct {
	DHT      string `json:"dht"` // "cluster" or "dht" (the other, e.g. public, DHT)
	Roots    int64  `json:"roots"`
	Pending  int64  `json:"pending"`
	Provided int64  `json:"provided"`
	Failed   int64  `json:"failed"`
	Online   bool   `json:"online"`
}

// networkStatus fills in the reachability and announcement parts of s.
func (d *Daemon) networkStatus(s *Status) {
	ns := d.node.NATStatus()
	r := &ReachInfo{
		Traversal: d.traversal, Reachability: ns.Reachability, Since: ns.Since,
		PublicAddrs: ns.PublicAddrs, RelayAddrs: ns.RelayAddrs, Direct: ns.Direct, Relayed: ns.Relayed,
		Advice: ns.Advice(),
	}
	if !d.traversal && d.l.Config.NAT.Traversal {
		r.Advice = "NAT traversal is off: the node listens on loopback only"
	}
	s.Reach = r
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := d.node.ProvideStatus(ctx)
	if err != nil {
		return
	}
	for _, p := range st {
		s.Provide = append(s.Provide, ProvideInfo{DHT: p.DHT, Roots: p.Keys, Pending: p.Pending, Provided: p.Provided, Failed: p.Failed, Online: p.Online})
	}
}
