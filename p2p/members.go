package p2p

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// memberTag marks kept members in the connection manager: a tagged peer
// is trimmed after untagged ones, never before a protected bootstrap peer.
const memberTag = "pinfold-member"

// members is the set of cluster members Run keeps connections to, as the
// owner of the node last set it. Safe for concurrent use.
type members struct {
	mu   sync.Mutex
	list []peer.AddrInfo // at most Config.KeepMembers, in order of preference
	wake chan struct{}   // Run reads the list again; buffered 1
}

func newMembers() *members { return &members{wake: make(chan struct{}, 1)} }

func (m *members) get() []peer.AddrInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.list
}

// SetMembers replaces the cluster members the node keeps connections to,
// in order of preference, and returns how many it keeps. The addresses
// are a member's claim (from its signed offer), used only to dial: a
// member is authorised like any other peer, by the signatures on what it
// sends. So they are bounded and filtered: a /p2p suffix naming another
// peer drops the address, ourselves, bootstrap peers
// (kept anyway, with their configured addresses) and duplicates are
// skipped, each peer keeps at most maxAddrsPerPeer usable addresses (TCP
// or QUIC on a specific IP, see usableAddrs), peers without one are
// skipped, and at most Config.KeepMembers are kept.
//
// Run dials kept members that are not connected whatever the number of
// connections, with backoff (see Config.KeepReconnectMax), and the
// connection manager trims them after other peers, within its limits:
// they are tagged, not protected, so they never crowd out bootstrap
// peers.
func (n *Node) SetMembers(list []peer.AddrInfo) int {
	self := n.host.ID()
	seen := make(map[peer.ID]bool)
	var keep []peer.AddrInfo
	for _, ai := range list {
		if len(keep) == n.cfg.KeepMembers {
			break
		}
		if ai.ID == "" || ai.ID == self || seen[ai.ID] || n.isBootstrap(ai.ID) {
			continue
		}
		addrs := usableAddrs(transportAddrs(ai))
		if len(addrs) == 0 {
			continue
		}
		seen[ai.ID] = true
		keep = append(keep, peer.AddrInfo{ID: ai.ID, Addrs: addrs})
	}
	cm := n.host.ConnManager()
	n.members.mu.Lock()
	for _, old := range n.members.list {
		if !seen[old.ID] {
			cm.UntagPeer(old.ID, memberTag)
		}
	}
	for i, ai := range keep {
		cm.TagPeer(ai.ID, memberTag, 50-min(i, 40)) // preferred first
	}
	n.members.list = keep
	n.members.mu.Unlock()
	select {
	case n.members.wake <- struct{}{}:
	default:
	}
	return len(keep)
}

// transportAddrs returns ai's addresses without a /p2p/<ID> suffix naming
// ai itself; one naming another peer is dropped.
func transportAddrs(ai peer.AddrInfo) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(ai.Addrs))
	for _, a := range ai.Addrs {
		t, id := peer.SplitAddr(a)
		if t == nil || (id != "" && id != ai.ID) {
			continue
		}
		out = append(out, t)
	}
	return out
}

// Members returns the members the node keeps connections to, as
// SetMembers kept them.
func (n *Node) Members() []peer.AddrInfo { return n.members.get() }
