package headsync

import (
	"context"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipns"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/trust"
)

// BenchmarkRelayCheck measures what the heads topic's validator does for
// one announcement of a new head: strict decoding of the announcement and
// the head, and one ed25519 verification against the newest head's trust
// set (issue 11 asks for about 60 µs).
func BenchmarkRelayCheck(b *testing.B) {
	sign := func(h dag.Head) []byte {
		sh, err := trust.SignHead(scenarioKey("k1"), h)
		if err != nil {
			b.Fatal(err)
		}
		data, err := dag.EncodeSignedHead(sh)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	g := dag.Head{Version: dag.Version, Cluster: []byte(scenarioID("cluster")), Trust: trustSet("k1+k2+k3"),
		Pinset: scenarioLink, Members: scenarioLink, Allocation: scenarioLink, Time: scenarioBase.UnixMilli()}
	gData := sign(g)
	gCID := dag.CID(gData)
	child := g
	child.Parent, child.Seq, child.Time = &gCID, 1, g.Time+1000
	ann, err := Announcement{Head: sign(child)}.Encode()
	if err != nil {
		b.Fatal(err)
	}
	now := scenarioBase.Add(time.Hour)
	s, err := New(context.Background(), Config{
		Rules:      trust.Rules{Cluster: scenarioID("cluster"), Trust: []peer.ID{scenarioID("k1")}},
		Checkpoint: gCID, Name: ipns.NameFromPeer(scenarioID("cluster")), Now: func() time.Time { return now },
	}, dssync.MutexWrap(ds.NewMapDatastore()), blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore())), nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Consider(context.Background(), Announcement{Head: gData}, FromLocal, ""); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		a, err := DecodeAnnouncement(ann)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.precheck(a, FromTopic, now); err != nil {
			b.Fatal(err)
		}
	}
}
