package curator

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/store"
	"github.com/pinfold/pinfold/trust"
)

// BenchmarkOffer is the curator's work for one offer in a cluster of
// 10,000 members holding 3,900 shards three times over (docs/scale.md's
// model): the signature check the topic's validator does (readOffers
// takes the verified offer from the message, records.VerifiedOffer), what
// the member holds (ackTable.heldBy), and Members.Offer, which writes the
// member to a real badger store. Each offer is a
// member's next one, as every offer_interval brings.
func BenchmarkOffer(b *testing.B) {
	const members, shards, copies = 10_000, 3_900, 3
	ctx := context.Background()
	st, err := store.Open(filepath.Join(b.TempDir(), "store"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	m, err := openMembers(ctx, st.Datastore, "open", nil, time.Minute, PledgePolicy{Max: 1 << 50})
	if err != nil {
		b.Fatal(err)
	}
	acks := &ackTable{latest: map[int64]map[peer.ID]dag.Ack{}, held: map[peer.ID]int64{}}
	clusterKey, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	cluster, _ := peer.IDFromPrivateKey(clusterKey)
	keys := make([]crypto.PrivKey, members)
	ids := make([]peer.ID, members)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	offer := func(i, round int) dag.Offer {
		return dag.Offer{
			Version: dag.Version, Cluster: []byte(cluster), Peer: []byte(ids[i]),
			// A pledge over the free space, as when the member's disk
			// holds its shards: the curator adds up what it holds.
			Capacity: 500 << 30, Free: 499 << 30, Agent: "pinfold/bench", Nickname: fmt.Sprintf("member-%05d", i),
			Addrs: [][]byte{}, Time: base.Add(time.Duration(round) * 20 * time.Second).UnixMilli(),
		}
	}
	for i := range members {
		if keys[i], _, err = crypto.GenerateEd25519Key(rand.Reader); err != nil {
			b.Fatal(err)
		}
		ids[i], _ = peer.IDFromPrivateKey(keys[i])
	}
	for s := range int64(shards) {
		for c := range int64(copies) {
			p := ids[(s*copies+c)%members]
			acks.putLocked(dag.Ack{Shard: s, Peer: []byte(p), State: "stored", Bytes: 2 << 30, Seq: 1})
		}
	}
	for i := range members {
		held := func() int64 { return acks.heldBy(ids[i]) }
		if _, err := m.Offer(ctx, offer(i, 0), held, base); err != nil {
			b.Fatal(err)
		}
	}
	// The offers, signed before the clock starts: the next round's, in
	// member order.
	data := make([][]byte, b.N)
	for i := range b.N {
		so, err := trust.SignOffer(keys[i%members], offer(i%members, 1+i/members))
		if err != nil {
			b.Fatal(err)
		}
		if data[i], err = dag.EncodeSignedOffer(so); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		so, err := trust.VerifyOffer(cluster, data[i]) // the validator
		if err != nil {
			b.Fatal(err)
		}
		now := base.Add(time.Duration(1+i/members) * 20 * time.Second)
		held := func() int64 { return acks.heldBy(peer.ID(so.Offer.Peer)) }
		if _, err := m.Offer(ctx, so.Offer, held, now); err != nil {
			b.Fatal(err)
		}
	}
}
