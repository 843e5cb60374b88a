package p2p

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
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
// or QUIC on a specific IP, see usableAddrs), and at most
// Config.KeepMembers are kept. A peer without a usable address is kept
// when the cluster DHT runs: its addresses are looked up there when it is
// dialled (see dialMember); without the cluster DHT it is skipped.
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
		if len(addrs) == 0 && n.cdht == nil {
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

// dialMember connects to a kept member: at the addresses it came with or
// the peerstore's (from an earlier connection), then, if that fails and
// the cluster DHT runs, at what the DHT finds for it (kad-dht's peer
// routing: the DHT servers closest to it answer with the addresses they
// know it by). With the DHT, the first try gets half of ctx's time, so a
// stale address that hangs leaves time for the lookup. Like an offer's,
// the DHT's answer is a claim, filtered the same way and only used to
// dial: the connection's handshake proves the peer's identity.
func (n *Node) dialMember(ctx context.Context, ai peer.AddrInfo) error {
	err := errNoAddrs
	addrs := usableAddrs(ai.Addrs)
	if len(addrs) == 0 {
		addrs = usableAddrs(n.host.Peerstore().Addrs(ai.ID))
	}
	if len(addrs) > 0 {
		first := ctx
		if dl, ok := ctx.Deadline(); ok && n.cdht != nil {
			var cancel context.CancelFunc
			first, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/2))
			defer cancel()
		}
		if err = n.host.Connect(first, peer.AddrInfo{ID: ai.ID, Addrs: addrs}); err == nil || n.cdht == nil {
			return err
		}
	}
	if n.cdht == nil {
		return fmt.Errorf("member %s: %w", ai.ID, err)
	}
	connected := func() bool { return n.host.Network().Connectedness(ai.ID) == network.Connected }
	if connected() {
		return nil // it dialled us meanwhile
	}
	found, ferr := n.cdht.FindPeer(ctx, ai.ID)
	if addrs = usableAddrs(transportAddrs(found)); ferr != nil || len(addrs) == 0 {
		// kad-dht's query dials the peers it finds, the member too, and
		// then answers with what the peerstore holds, which identify may
		// not have filled yet; or the member dialled us meanwhile.
		if connected() {
			if ferr == nil {
				n.memberLookups.Add(1)
			}
			return nil
		}
		if ferr != nil {
			return fmt.Errorf("member %s: %w; cluster dht: %w", ai.ID, err, ferr)
		}
		return fmt.Errorf("member %s: %w; the cluster dht knows no usable address", ai.ID, err)
	}
	n.memberLookups.Add(1)
	return n.host.Connect(ctx, peer.AddrInfo{ID: ai.ID, Addrs: addrs})
}

// MemberLookups returns how many times a kept member's addresses were
// found in the cluster DHT and dialled.
func (n *Node) MemberLookups() uint64 { return n.memberLookups.Load() }
