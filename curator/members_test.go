package curator

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/trust"
)

func newPeer(t *testing.T) peer.ID {
	t.Helper()
	k, err := trust.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestNicknamesUnique: a nickname another member uses is refused, with
// the reason kept for 'members ls'; the refused peer joins under another.
func TestNicknamesUnique(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, err := openMembers(ctx, dssync.MutexWrap(ds.NewMapDatastore()), "open", nil, time.Minute, PledgePolicy{Max: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	a, b := newPeer(t), newPeer(t)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	offer := func(p peer.ID, nick string, at time.Time) error {
		_, err := m.Offer(ctx, dag.Offer{Peer: []byte(p), Nickname: nick, Capacity: 1 << 30, Free: 1 << 32, Time: at.UnixMilli()}, noneHeld, at)
		return err
	}
	if err := offer(a, "alice", now); err != nil {
		t.Fatal(err)
	}
	err = offer(b, "alice", now.Add(time.Second))
	if !errors.Is(err, ErrOfferRefused) || !strings.Contains(err.Error(), `nickname "alice" is taken by member `+a.String()) {
		t.Fatalf("duplicate nickname: %v", err)
	}
	byPeer := map[string]MemberInfo{}
	for _, mi := range m.List() {
		byPeer[mi.Peer] = mi
	}
	if byPeer[b.String()].Refused == "" || byPeer[b.String()].State != StatePending || byPeer[a.String()].State != StateActive {
		t.Fatalf("after the refusal: %+v", byPeer)
	}
	// Renewed by its holder, the nickname stays its own.
	if err := offer(a, "alice", now.Add(2*time.Second)); err != nil {
		t.Fatalf("a's own nickname again: %v", err)
	}
	if err := offer(b, "bob", now.Add(3*time.Second)); err != nil {
		t.Fatalf("another nickname: %v", err)
	}
	// Renewing checks nothing against the others, but a change does: b
	// cannot switch to a's nickname, and keeps its own.
	if err := offer(b, "bob", now.Add(4*time.Second)); err != nil {
		t.Fatalf("b's own nickname again: %v", err)
	}
	if err := offer(b, "alice", now.Add(5*time.Second)); !errors.Is(err, ErrOfferRefused) {
		t.Fatalf("b switching to a's nickname: %v, want refused", err)
	}
	if err := offer(b, "bob", now.Add(6*time.Second)); err != nil {
		t.Fatalf("b back to its own nickname after a refusal: %v", err)
	}

	// Past the TTL, a member that sent no offer is listed offline at once.
	for _, mi := range m.ListAt(now.Add(2*time.Second + time.Minute + time.Millisecond)) {
		want := StateActive
		if mi.Peer == a.String() {
			want = StateOffline
		}
		if mi.State != want {
			t.Errorf("%s: state %s, want %s", mi.Nickname, mi.State, want)
		}
	}
}

func noneHeld() int64 { return 0 }

// TestHeldBy: what a member holds follows its newest ACK of each shard:
// a newer stored ACK replaces the older's bytes, a release takes them
// away, an older ACK arriving late changes nothing.
func TestHeldBy(t *testing.T) {
	tab := &ackTable{latest: map[int64]map[peer.ID]dag.Ack{}, held: map[peer.ID]int64{}}
	a, b := newPeer(t), newPeer(t)
	steps := []struct {
		ack       dag.Ack
		heldA, hB int64
	}{
		{dag.Ack{Peer: []byte(a), Shard: 1, Seq: 1, State: "stored", Bytes: 100}, 100, 0},
		{dag.Ack{Peer: []byte(a), Shard: 2, Seq: 1, State: "stored", Bytes: 50}, 150, 0},
		{dag.Ack{Peer: []byte(b), Shard: 1, Seq: 1, State: "stored", Bytes: 100}, 150, 100},
		{dag.Ack{Peer: []byte(a), Shard: 1, Seq: 2, State: "stored", Bytes: 120}, 170, 100},
		{dag.Ack{Peer: []byte(a), Shard: 1, Seq: 1, Time: 9, State: "stored", Bytes: 999}, 170, 100}, // older: ignored
		{dag.Ack{Peer: []byte(a), Shard: 2, Seq: 3, State: "released", Bytes: 50}, 120, 100},
		{dag.Ack{Peer: []byte(b), Shard: 1, Seq: 3, State: "released"}, 120, 0},
	}
	for i, s := range steps {
		tab.putLocked(s.ack)
		if ga, gb := tab.heldBy(a), tab.heldBy(b); ga != s.heldA || gb != s.hB {
			t.Fatalf("step %d: held a %d b %d, want %d %d", i, ga, gb, s.heldA, s.hB)
		}
	}
}
