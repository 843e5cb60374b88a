package records

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/dag"
)

// testView is a head at seq 10 with members a, b, c and two shards of
// replication 1 each, so every shard has one holder and one non-holder.
func testView(t *testing.T, seq int64) HeadView {
	t.Helper()
	in := allocation.Input{
		Algorithm: allocation.Algorithm, AlgVer: allocation.Version,
		Params: allocation.Params{ReplMin: 1, ReplMax: 1, ShardTarget: 100, Epsilon: 50_000},
		Members: []allocation.Member{
			{Peer: []byte("a"), Capacity: 1000}, {Peer: []byte("b"), Capacity: 1000}, {Peer: []byte("c"), Capacity: 1000},
		},
		Shards: []allocation.Shard{{ID: 0, Bytes: 100, Pins: 1, ReplMin: 1, ReplMax: 1}, {ID: 1, Bytes: 100, Pins: 1, ReplMin: 1, ReplMax: 1}},
	}
	p, err := allocation.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	return HeadView{CID: dag.CID([]byte{byte(seq)}), Seq: seq, Plan: p, Members: map[string]bool{"a": true, "b": true, "c": true}}
}

// holderOf returns the holder of shard and a member that is not.
func holderOf(t *testing.T, v HeadView, shard int64) (holder, other []byte) {
	t.Helper()
	hs, ok := v.Plan.Holders(shard)
	if !ok || len(hs) != 1 {
		t.Fatalf("shard %d holders %q", shard, hs)
	}
	for _, m := range [][]byte{[]byte("a"), []byte("b"), []byte("c")} {
		if !bytes.Equal(m, hs[0]) {
			return hs[0], m
		}
	}
	t.Fatal("no non-holder")
	return nil, nil
}

func TestCheckAck(t *testing.T) {
	v := testView(t, 10)
	holder, other := holderOf(t, v, 0)
	base := dag.Ack{Peer: holder, Head: v.CID, Seq: 10, Shard: 0, State: "stored", Time: 100}
	with := func(f func(a *dag.Ack)) dag.Ack { a := base; f(&a); return a }
	tests := []struct {
		name string
		ack  dag.Ack
		last *Last
		want error
	}{
		{"assigned holder", base, nil, nil},
		{"newer than the last", base, &Last{Seq: 9, Time: 500, State: "stored"}, nil},
		{"same head, later time", base, &Last{Seq: 10, Time: 99, State: "stored"}, nil},
		{"not a member", with(func(a *dag.Ack) { a.Peer = []byte("z") }), nil, ErrNotMember},
		{"no such shard", with(func(a *dag.Ack) { a.Shard = 7 }), nil, ErrNoShard},
		{"someone else's shard", with(func(a *dag.Ack) { a.Peer = other }), nil, ErrNotAssigned},
		{"seq differs from the head's", with(func(a *dag.Ack) { a.Seq = 11 }), nil, ErrSeqMismatch},
		{"replay: same", base, &Last{Seq: 10, Time: 100, State: "stored"}, ErrReplay},
		{"replay: older head, later clock", with(func(a *dag.Ack) { a.Time = 1 << 40 }), &Last{Seq: 11, Time: 0, State: "stored"}, ErrReplay},
		{"release by the holder", with(func(a *dag.Ack) { a.State = "released" }), nil, nil},
		{"release by a former holder", with(func(a *dag.Ack) { a.State = "released"; a.Peer = other }), &Last{Seq: 8, State: "stored"}, nil},
		{"release by a stranger to the shard", with(func(a *dag.Ack) { a.State = "released"; a.Peer = other }), nil, ErrNotHolder},
		{"release twice", with(func(a *dag.Ack) { a.State = "released"; a.Peer = other }), &Last{Seq: 8, State: "released"}, ErrNotHolder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckAck(tt.ack, v, tt.last)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("CheckAck = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	w := NewWindow(3)
	if _, err := w.Lookup(dag.CID([]byte{1}), 1); !errors.Is(err, ErrUnknownHead) {
		t.Fatalf("empty window: %v", err)
	}
	for _, seq := range []int64{5, 3, 4, 6} { // out of order on purpose
		w.Add(HeadView{CID: dag.CID([]byte{byte(seq)}), Seq: seq})
	}
	if n, _ := w.Newest(); n.Seq != 6 {
		t.Fatalf("newest seq %d", n.Seq)
	}
	for seq := int64(4); seq <= 6; seq++ {
		if v, err := w.Lookup(dag.CID([]byte{byte(seq)}), seq); err != nil || v.Seq != seq {
			t.Fatalf("seq %d: %v %v", seq, v.Seq, err)
		}
	}
	if _, err := w.Lookup(dag.CID([]byte{3}), 3); !errors.Is(err, ErrStaleHead) {
		t.Fatalf("fell out of the window: %v", err)
	}
	if _, err := w.Lookup(dag.CID([]byte{9}), 9); !errors.Is(err, ErrUnknownHead) {
		t.Fatalf("newer head: %v", err)
	}
	if _, err := w.Lookup(cid.Undef, 5); !errors.Is(err, ErrUnknownHead) {
		t.Fatalf("a CID that is not in it at a seq in range: %v", err)
	}
}

func TestBatchRoundTrip(t *testing.T) {
	acks := [][]byte{[]byte("one"), bytes.Repeat([]byte{7}, MaxSize)}
	data, err := EncodeBatch(acks)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(data)
	if err != nil || len(got) != 2 || !bytes.Equal(got[1], acks[1]) {
		t.Fatalf("decode: %v %d", err, len(got))
	}
	for _, bad := range [][][]byte{nil, make([][]byte, MaxBatch+1)} {
		if _, err := EncodeBatch(bad); err == nil {
			t.Errorf("encoded %d acks", len(bad))
		}
	}
	for name, data := range map[string][]byte{
		"empty":          {},
		"not a map":      {0x01},
		"trailing bytes": append(append([]byte{}, data...), 0),
		"other key":      {0xa1, 0x61, 0x78, 0x80},
		"empty list":     {0xa1, 0x64, 'a', 'c', 'k', 's', 0x80},
		"not bytes":      {0xa1, 0x64, 'a', 'c', 'k', 's', 0x81, 0x01},
		"empty ack":      {0xa1, 0x64, 'a', 'c', 'k', 's', 0x81, 0x40},
		"over size":      make([]byte, MaxBatchSize+1),
	} {
		if _, err := DecodeBatch(data); !errors.Is(err, ErrMalformedBatch) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	good, _ := EncodeBatch([][]byte{[]byte("x")})
	f.Add(good)
	f.Add([]byte{0xa1, 0x64, 'a', 'c', 'k', 's', 0x81, 0x41, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		acks, err := DecodeBatch(data)
		if err != nil {
			return
		}
		again, err := EncodeBatch(acks)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("decoded a batch that does not re-encode to its bytes: %v", err)
		}
	})
}
