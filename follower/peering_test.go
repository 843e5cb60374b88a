package follower

import (
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pinfold/pinfold/dag"
)

func testPeerID(t *testing.T, i int) peer.ID {
	t.Helper()
	id, err := peer.Decode(fmt.Sprintf("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5S%c", 'A'+i))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRankMembers(t *testing.T) {
	self := testPeerID(t, 0)
	a, b, c, d := testPeerID(t, 1), testPeerID(t, 2), testPeerID(t, 3), testPeerID(t, 4)
	got := rankMembers(self, []peerCandidate{
		{id: self, coHold: true},
		{id: a, offline: true},
		{id: b},
		{id: c, coHold: true},
		{id: d, coHold: true, offline: true}, // co-holders first, even offline
	})
	if len(got) != 4 {
		t.Fatalf("rankMembers = %v, want 4 peers without ourselves", got)
	}
	first := map[peer.ID]bool{got[0]: true, got[1]: true}
	if !first[c] || !first[d] || got[2] != b || got[3] != a {
		t.Fatalf("rankMembers = %v, want co-holders %s and %s, then live %s, then offline %s", got, c, d, b, a)
	}
	// Another follower may order the co-holders differently, never the groups.
	other := rankMembers(b, []peerCandidate{{id: a, offline: true}, {id: c}, {id: d}})
	if other[2] != a {
		t.Fatalf("rankMembers from another follower = %v: the offline member must come last", other)
	}
}

func TestMemberAddrs(t *testing.T) {
	m := newMemberAddrs(2)
	a, b, c := testPeerID(t, 1), testPeerID(t, 2), testPeerID(t, 3)
	addr := ma.StringCast("/ip4/10.0.0.1/tcp/4050")
	offer := func(id peer.ID, time int64, addrs ...[]byte) dag.Offer {
		return dag.Offer{Peer: []byte(id), Time: time, Addrs: addrs}
	}
	for _, tc := range []struct {
		name    string
		o       dag.Offer
		changed bool
		wantFor peer.ID
		want    int
	}{
		{"first offer", offer(a, 10, addr.Bytes()), true, a, 1},
		{"replay", offer(a, 10), false, a, 1},
		{"older", offer(a, 9), false, a, 1},
		{"newer without addresses", offer(a, 11), true, a, 0},
		{"junk address skipped", offer(a, 12, []byte{0xff, 0x01}, addr.Bytes()), true, a, 1},
		{"second peer", offer(b, 20, addr.Bytes()), true, b, 1},
		{"full: older than all kept", offer(c, 5, addr.Bytes()), false, c, 0},
		{"full: newer evicts the oldest", offer(c, 30, addr.Bytes()), true, c, 1},
		{"evicted", offer(b, 20), false, a, 0},
		{"bad peer ID", dag.Offer{Peer: []byte("junk"), Time: 99}, false, b, 1},
	} {
		if got := m.add(tc.o); got != tc.changed {
			t.Errorf("%s: add = %v, want %v", tc.name, got, tc.changed)
		}
		if got := len(m.get(tc.wantFor)); got != tc.want {
			t.Errorf("%s: %d addresses for %s, want %d", tc.name, got, tc.wantFor, tc.want)
		}
	}
}
