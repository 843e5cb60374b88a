package assign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/multiformats/go-multihash"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/dag"
)

// memoHead builds head seq's blocks (members and shards of its own) in st
// and returns the head and a CID naming it (the memo keys by it).
func memoHead(t *testing.T, st *dag.Store, seq int64) (cid.Cid, dag.Head) {
	t.Helper()
	var members []dag.Member
	for i := range 5 {
		p := sha256.Sum256([]byte{byte(seq), byte(i)})
		members = append(members, dag.Member{Peer: append([]byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}, p[:]...), Capacity: 10 << 30, Admitted: 1})
	}
	slices.SortFunc(members, func(a, b dag.Member) int { return bytes.Compare(a.Peer, b.Peer) })
	var shards []dag.Shard
	for i := range int64(20 + seq) {
		shards = append(shards, dag.Shard{ID: i, Bytes: 100 << 20, Pins: 1, ReplMin: 2, ReplMax: 3})
	}
	h := dag.Head{Version: dag.Version, Seq: seq, Time: 1_700_000_000_000}
	h, _, err := st.BuildHead(context.Background(), h, dag.State{
		Shards: shards, Members: members,
		Allocation: dag.Allocation{Algorithm: allocation.Algorithm, AlgVer: allocation.Version,
			Params: dag.AllocParams{ReplMin: 2, ReplMax: 3, ShardTarget: 1 << 30, Epsilon: 50_000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mh, _ := multihash.Sum([]byte{byte(seq)}, multihash.SHA2_256, -1)
	return cid.NewCidV1(cid.DagCBOR, mh), h
}

func TestMemo(t *testing.T) {
	ctx := context.Background()
	st := dag.NewStore(blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore())))
	c1, h1 := memoHead(t, st, 1)
	c2, h2 := memoHead(t, st, 2)
	c3, h3 := memoHead(t, st, 3)
	m := NewMemo(2)

	p1, in1, err := m.Plan(ctx, st, c1, h1)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Len() != 21 || len(in1.Members) != 5 {
		t.Fatalf("plan of %d shards, %d members; want 21 and 5", p1.Len(), len(in1.Members))
	}
	if again, _, _ := m.Plan(ctx, st, c1, h1); again != p1 {
		t.Fatal("a head asked for twice was computed twice")
	}

	// Callers asking at once share one computation.
	var wg sync.WaitGroup
	got := make([]any, 8)
	for i := range got {
		wg.Go(func() {
			p, _, err := m.Plan(ctx, st, c2, h2)
			if err != nil {
				t.Error(err)
			}
			got[i] = p
		})
	}
	wg.Wait()
	for _, p := range got {
		if p != got[0] {
			t.Fatal("concurrent callers got different plans")
		}
	}

	// The oldest of n+1 heads is forgotten.
	if _, _, err := m.Plan(ctx, st, c3, h3); err != nil {
		t.Fatal(err)
	}
	if again, _, _ := m.Plan(ctx, st, c1, h1); again == p1 {
		t.Fatal("the oldest head's plan was kept beyond the memo's size")
	}

	// A failure is not remembered: the head's blocks arrive later.
	empty := dag.NewStore(blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore())))
	c4, h4 := memoHead(t, st, 4)
	if _, _, err := m.Plan(ctx, empty, c4, h4); err == nil {
		t.Fatal("a head without its blocks was planned")
	}
	if p, _, err := m.Plan(ctx, st, c4, h4); err != nil || p.Len() != 24 {
		t.Fatalf("after the blocks came: %v, %v", p, err)
	}

	// Put: a plan the caller computed is served without reading a block.
	p5, in5, err := Plan(ctx, st, h3)
	if err != nil {
		t.Fatal(err)
	}
	c5, _ := memoHead(t, st, 5)
	m.Put(c5, p5, in5)
	if p, _, err := m.Plan(ctx, empty, c5, dag.Head{}); err != nil || p != p5 {
		t.Fatalf("put plan not served: %v, %v", p, err)
	}
}
