package curator

import (
	"context"
	"fmt"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/pinset"
)

// TestHeadsStateWhatTheirCRDTHeadsHold publishes heads while an import
// merges, then checks every head against its CRDT heads: a replica fed
// only those heads (head by head, so it holds exactly their state) must
// count the pins, bytes and shards the head signs.
func TestHeadsStateWhatTheirCRDTHeadsHold(t *testing.T) {
	ctx := context.Background()
	d := openPlain(t)
	const batches, per = 30, 400
	done := make(chan error, 1)
	go func() { // owned by this test: ends when the import does
		for b := range batches {
			reqs := make([]PinRequest, per)
			for i := range reqs {
				n := b*per + i
				reqs[i] = PinRequest{CID: dag.CID(fmt.Appendf(nil, "pin %d", n)).String(), Size: int64(1000 + n)}
			}
			if _, err := d.AddPins(ctx, reqs); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var heads []dag.Pinset
	var shards [][]dag.Shard
	for importing := true; importing; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			importing = false
		default:
		}
		published, err := d.PublishNow(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if !published {
			continue
		}
		v, _ := d.heads.Newest()
		ps, err := d.store.DAG.Pinset(ctx, v.Head.Pinset)
		if err != nil {
			t.Fatal(err)
		}
		var ss []dag.Shard
		for s, err := range d.store.DAG.Shards(ctx, ps.Shards) {
			if err != nil {
				t.Fatal(err)
			}
			ss = append(ss, s)
		}
		heads, shards = append(heads, ps), append(shards, ss)
	}
	if len(heads) < 4 {
		t.Fatalf("only %d heads published during the import; the test needs heads made mid-import", len(heads))
	}
	if last := heads[len(heads)-1]; last.Pins != batches*per {
		t.Fatalf("the last head signs %d pins, want %d", last.Pins, batches*per)
	}

	replica, err := pinset.Open(ctx, pinset.DefaultConfig(), pinset.Deps{
		Datastore: dssync.MutexWrap(ds.NewMapDatastore()), DAG: d.node.DAGService()})
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	for i, ps := range heads {
		if err := replica.WaitFor(ctx, ps.CRDTHeads); err != nil {
			t.Fatal(err)
		}
		st := replica.Stats()
		if st.Pins != ps.Pins || st.Bytes != ps.Bytes || len(st.Shards) != len(shards[i]) {
			t.Fatalf("head %d signs %d pins, %d bytes, %d shards; its CRDT heads hold %d pins, %d bytes, %d shards",
				i, ps.Pins, ps.Bytes, len(shards[i]), st.Pins, st.Bytes, len(st.Shards))
		}
		for j, s := range shards[i] {
			if a := st.Shards[j]; a.Shard != s.ID || a.Pins != s.Pins || a.Bytes != s.Bytes {
				t.Fatalf("head %d signs shard %d with %d pins, %d bytes; its CRDT heads hold shard %d with %d pins, %d bytes",
					i, s.ID, s.Pins, s.Bytes, a.Shard, a.Pins, a.Bytes)
			}
		}
	}
	t.Logf("%d heads checked, from %d to %d pins", len(heads), heads[0].Pins, heads[len(heads)-1].Pins)
}
