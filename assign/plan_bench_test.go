package assign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"slices"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/dag"
)

// benchHead builds the head of scripts/measure-followers.sh in a memory
// store: n members pledging capacity each, 2,001 shards of 64 MiB,
// replication 2 to 3, the curator's defaults.
func benchHead(b *testing.B, n int, capacity int64) (*dag.Store, dag.Head) {
	b.Helper()
	st := dag.NewStore(blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore())))
	var members []dag.Member
	for i := range n {
		p := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		members = append(members, dag.Member{Peer: append([]byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}, p[:]...), Capacity: capacity, Admitted: 1})
	}
	slices.SortFunc(members, func(a, b dag.Member) int { return bytes.Compare(a.Peer, b.Peer) })
	var shards []dag.Shard
	for i := range int64(2001) {
		shards = append(shards, dag.Shard{ID: i, Bytes: 64 << 20, Pins: 1, ReplMin: 2, ReplMax: 3})
	}
	h := dag.Head{Version: dag.Version, Seq: 2, Time: 1_700_000_000_000}
	h, _, err := st.BuildHead(context.Background(), h, dag.State{
		Shards: shards, Members: members,
		Allocation: dag.Allocation{Algorithm: allocation.Algorithm, AlgVer: allocation.Version,
			Params: dag.AllocParams{ReplMin: 2, ReplMax: 3, ShardTarget: 64 << 20, Epsilon: allocation.DefaultEpsilon}},
	})
	if err != nil {
		b.Fatal(err)
	}
	return st, h
}

// BenchmarkPlan: what one head costs every follower, read and computed
// apart. "probation": 100 members, each capped at the 1 GiB a new member
// gets (the light followers of the measuring tool pass no audit), 100 GiB
// for 2,001 shards of 64 MiB: the cluster is over-full; "probation300":
// 300 such members, room for most copies; "pledged": 100 GiB each.
func BenchmarkPlan(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		members  int
		capacity int64
	}{{"probation", 100, 1 << 30}, {"probation300", 300, 1 << 30}, {"pledged", 100, 100 << 30}} {
		st, h := benchHead(b, c.members, c.capacity)
		b.Run(c.name+"/read", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Read(ctx, st, h); err != nil {
					b.Fatal(err)
				}
			}
		})
		in, err := Read(ctx, st, h)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/compute", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := allocation.Compute(in.Input()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
