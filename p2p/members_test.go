package p2p

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// TestSetMembersBounds: the claimed addresses of members are filtered and
// bounded: ourselves, bootstrap peers, duplicates and peers without a
// usable address are skipped, and at most KeepMembers are kept, in order.
func TestSetMembersBounds(t *testing.T) {
	boot := start(t, "boot", testKey(t, 20), testConfig(t.TempDir()))
	cfg := testConfig(t.TempDir(), boot.Node)
	cfg.KeepMembers = 3
	n := start(t, "n", testKey(t, 21), cfg)
	id := func(seed uint64) peer.ID {
		p, err := peer.IDFromPrivateKey(testKey(t, seed))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := ma.StringCast("/ip4/10.1.2.3/tcp/4050")
	list := []peer.AddrInfo{
		{ID: n.ID(), Addrs: []ma.Multiaddr{good}},                                     // ourselves
		{ID: boot.ID(), Addrs: []ma.Multiaddr{good}},                                  // bootstrap
		{ID: id(30), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/0.0.0.0/tcp/4050")}},   // unspecified IP
		{ID: id(31), Addrs: []ma.Multiaddr{ma.StringCast("/dns4/example.com/tcp/1")}}, // not an IP
		{ID: id(32), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/224.0.0.1/tcp/4050")}}, // multicast
		{ID: id(33), Addrs: []ma.Multiaddr{good, good}},
		{ID: id(33), Addrs: []ma.Multiaddr{good}}, // duplicate
		{ID: id(34), Addrs: []ma.Multiaddr{good}},
		{ID: id(35), Addrs: []ma.Multiaddr{good}},
		{ID: id(36), Addrs: []ma.Multiaddr{good}}, // over KeepMembers
	}
	for range 10 {
		list[5].Addrs = append(list[5].Addrs, ma.StringCast("/ip4/10.9.9.9/tcp/1"))
	}
	if got := n.SetMembers(list); got != 3 {
		t.Fatalf("SetMembers kept %d, want 3", got)
	}
	kept := n.Members()
	for i, want := range []peer.ID{id(33), id(34), id(35)} {
		if kept[i].ID != want {
			t.Errorf("kept[%d] = %s, want %s", i, kept[i].ID, want)
		}
	}
	if len(kept[0].Addrs) != 2 {
		t.Errorf("kept[0] has addresses %v, want the 2 distinct ones", kept[0].Addrs)
	}
	if v := n.Host().ConnManager().GetTagInfo(id(34)); v == nil || v.Tags[memberTag] == 0 {
		t.Errorf("member %s not tagged in the connection manager", id(34))
	}
	n.SetMembers(nil)
	if len(n.Members()) != 0 {
		t.Errorf("Members after SetMembers(nil) = %v", n.Members())
	}
	if v := n.Host().ConnManager().GetTagInfo(id(34)); v != nil && v.Tags[memberTag] != 0 {
		t.Errorf("member %s still tagged after it was dropped", id(34))
	}
}

// TestMemberKeptAndRedialled: a member is dialled although the node has
// ConnLow connections already (remembered peers would not be), and
// redialled when it comes back on the same addresses.
func TestMemberKeptAndRedialled(t *testing.T) {
	dirM := t.TempDir()
	cfgM := testConfig(dirM)
	m := start(t, "member", testKey(t, 40), cfgM)
	other := start(t, "other", testKey(t, 41), testConfig(t.TempDir()))
	cfg := testConfig(t.TempDir(), other.Node)
	cfg.ConnLow, cfg.ConnHigh = 1, 50 // one connection (other) is enough for remembered peers
	n := start(t, "n", testKey(t, 42), cfg)
	waitFor(t, "n to reach its bootstrap peer", func() bool { return n.ConnectedTo(other.ID()) })

	n.SetMembers([]peer.AddrInfo{{ID: m.ID(), Addrs: m.Addrs()}})
	waitFor(t, "n to dial the member", func() bool { return n.ConnectedTo(m.ID()) })

	cfgM.Listen = nil
	for _, a := range m.Host().Addrs() {
		cfgM.Listen = append(cfgM.Listen, a.String())
	}
	m.stop(t)
	// A closed connection is noticed at once, unless the close itself is
	// lost; then only at QUIC's idle timeout, 30 s, which was waitFor's
	// limit (a loaded CI run timed out here once, after 30 s).
	waitWithin(t, time.Minute, "n to notice the member is gone", func() bool { return !n.ConnectedTo(m.ID()) })
	m2 := start(t, "member again", testKey(t, 40), cfgM)
	waitFor(t, "n to redial the member", func() bool { return n.ConnectedTo(m2.ID()) })
}

// TestKeptPeerRedialledDespiteSwarmBackoff: libp2p's swarm refuses to
// redial an address for 5s + 1s·tries² after failed dials; a bootstrap
// peer that comes back is redialled on the node's own (short) backoff
// instead, not minutes later.
func TestKeptPeerRedialledDespiteSwarmBackoff(t *testing.T) {
	dirA := t.TempDir()
	cfgA := testConfig(dirA)
	cfgA.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	a := start(t, "A", testKey(t, 50), cfgA)
	cfgB := testConfig(t.TempDir(), a.Node)
	cfgB.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	b := start(t, "B", testKey(t, 51), cfgB)
	waitFor(t, "B connected to A", func() bool { return b.ConnectedTo(a.ID()) })

	cfgA.Listen = nil
	for _, addr := range a.Host().Addrs() {
		cfgA.Listen = append(cfgA.Listen, addr.String())
	}
	a.stop(t)
	waitFor(t, "B to notice A is gone", func() bool { return !b.ConnectedTo(a.ID()) })
	// As after a long cut: ten failed dials of each address, so the
	// swarm would refuse them for 5s + 100s.
	sw, ok := b.Host().Network().(*swarm.Swarm)
	if !ok {
		t.Fatalf("host network is %T, want *swarm.Swarm", b.Host().Network())
	}
	for _, s := range cfgA.Listen {
		for range 10 {
			sw.Backoff().AddBackoff(a.ID(), ma.StringCast(s))
		}
		if !sw.Backoff().Backoff(a.ID(), ma.StringCast(s)) {
			t.Fatalf("the swarm does not back off from %s", s)
		}
	}
	cfgA.PeersFile = "" // A must not dial B itself
	a2 := start(t, "A again", testKey(t, 50), cfgA)
	waitFor(t, "B to reconnect to A within the swarm's backoff", func() bool { return b.ConnectedTo(a2.ID()) })
}

// TestMemberFoundInClusterDHT: a member handed over without addresses is
// kept and dialled when the cluster DHT runs, its addresses looked up
// there through a third peer both know (as followers know their
// curator); without the cluster DHT such a member is not kept at all.
func TestMemberFoundInClusterDHT(t *testing.T) {
	t.Parallel()
	_, m, n := clusterDHTTrio(t, 60)
	if kept := n.SetMembers([]peer.AddrInfo{{ID: m.ID()}}); kept != 1 {
		t.Fatalf("SetMembers kept %d members without addresses, want 1 (the cluster DHT finds them)", kept)
	}
	waitFor(t, "n to keep a connection to the member", func() bool { return n.ConnectedTo(m.ID()) })

	// kad-dht connects the peers of a small DHT to each other by itself
	// and fills their peerstores, so the lookup is checked on its own:
	// with no connection and no address known, dialMember must find the
	// member in the DHT and connect. The DHT's own dynamics (a peer
	// reconnecting by itself, a lookup that ends early in a network of
	// three) can spoil one try, so it gets up to 10.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var errs []error
	for try := 0; try < 10 && n.MemberLookups() == 0 && ctx.Err() == nil; try++ {
		_ = n.Host().Network().ClosePeer(m.ID())
		n.Host().Peerstore().ClearAddrs(m.ID())
		if err := n.dialMember(ctx, peer.AddrInfo{ID: m.ID()}); err != nil {
			errs = append(errs, err)
		}
	}
	if got := n.MemberLookups(); got < 1 {
		t.Fatalf("no dial with no address known connected through a cluster DHT lookup; errors: %v", errs)
	}
	if !n.ConnectedTo(m.ID()) {
		t.Fatal("MemberLookups counted a lookup, but n is not connected to the member")
	}
	t.Logf("%d failed tries before a lookup connected: %v", len(errs), errs)

	plain := start(t, "plain", testKey(t, 63), testConfig(t.TempDir()))
	if kept := plain.SetMembers([]peer.AddrInfo{{ID: m.ID()}}); kept != 0 {
		t.Fatalf("without a cluster DHT, SetMembers kept %d members without addresses, want 0", kept)
	}
	if err := plain.dialMember(ctx, peer.AddrInfo{ID: m.ID()}); !errors.Is(err, errNoAddrs) {
		t.Fatalf("without a cluster DHT or an address, dialMember = %v, want errNoAddrs", err)
	}
}
