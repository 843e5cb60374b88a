package dag

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	badger "github.com/ipfs/go-ds-badger4"
	format "github.com/ipfs/go-ipld-format"
)

var _ Blocks = blockstore.Blockstore(nil)

// blockKey is where boxo's blockstore keeps block c in its datastore.
func blockKey(c cid.Cid) ds.Key {
	return blockstore.BlockPrefix.Child(dshelp.MultihashToDsKey(c.Hash()))
}

func newMemStore(t testing.TB) (*Store, ds.Batching) {
	t.Helper()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	return NewStore(blockstore.NewBlockstore(d)), d
}

func TestStorePutGet(t *testing.T) {
	ctx := context.Background()
	s, _ := newMemStore(t)
	check := func(name string, put func() (cid.Cid, error), get func(cid.Cid) (any, error), want any, enc func() ([]byte, error)) {
		t.Helper()
		c, err := put()
		if err != nil {
			t.Fatalf("%s: put: %v", name, err)
		}
		b, _ := enc()
		if !c.Equals(CID(b)) {
			t.Fatalf("%s: put returned %s, encoding hashes to %s", name, c, CID(b))
		}
		got, err := get(c)
		if err != nil {
			t.Fatalf("%s: get: %v", name, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Fatalf("%s: got %+v, want %+v", name, got, want)
		}
	}
	h, p, a, ack, off := fixtureSignedHead(), fixturePinset(), fixtureAllocation(), fixtureSignedAck(), fixtureSignedOffer()
	l := fixtureList()
	check("head", func() (cid.Cid, error) { return s.PutSignedHead(ctx, h) },
		func(c cid.Cid) (any, error) { return s.SignedHead(ctx, c) }, h, func() ([]byte, error) { return EncodeSignedHead(h) })
	check("pinset", func() (cid.Cid, error) { return s.PutPinset(ctx, p) },
		func(c cid.Cid) (any, error) { return s.Pinset(ctx, c) }, p, func() ([]byte, error) { return EncodePinset(p) })
	check("allocation", func() (cid.Cid, error) { return s.PutAllocation(ctx, a) },
		func(c cid.Cid) (any, error) { return s.Allocation(ctx, c) }, a, func() ([]byte, error) { return EncodeAllocation(a) })
	check("ack", func() (cid.Cid, error) { return s.PutSignedAck(ctx, ack) },
		func(c cid.Cid) (any, error) { return s.SignedAck(ctx, c) }, ack, func() ([]byte, error) { return EncodeSignedAck(ack) })
	check("offer", func() (cid.Cid, error) { return s.PutSignedOffer(ctx, off) },
		func(c cid.Cid) (any, error) { return s.SignedOffer(ctx, c) }, off, func() ([]byte, error) { return EncodeSignedOffer(off) })
	au := fixtureSignedAudit()
	check("audit", func() (cid.Cid, error) { return s.PutSignedAudit(ctx, au) },
		func(c cid.Cid) (any, error) { return s.SignedAudit(ctx, c) }, au, func() ([]byte, error) { return EncodeSignedAudit(au) })
	listCID, err := putTyped(ctx, s, listType, &l)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.List(ctx, listCID); err != nil || !reflect.DeepEqual(got, l) {
		t.Fatalf("list: %+v, %v", got, err)
	}

	// Invalid values are never stored.
	bad := fixtureSignedHead()
	bad.Head.Seq = -1
	if _, err := s.PutSignedHead(ctx, bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("put invalid head: %v, want ErrMalformed", err)
	}
	// Reading a block as the wrong type fails cleanly.
	pc, _ := s.PutPinset(ctx, p)
	if _, err := s.SignedHead(ctx, pc); !errors.Is(err, ErrMalformed) {
		t.Fatalf("pinset read as head: %v, want ErrMalformed", err)
	}
}

func TestStoreGetRejects(t *testing.T) {
	ctx := context.Background()
	s, d := newMemStore(t)
	// Missing block.
	missing := fakeCID("missing")
	if _, err := s.SignedHead(ctx, missing); !errors.Is(err, format.ErrNotFound{}) {
		t.Fatalf("missing block: %v, want ErrNotFound", err)
	}
	// Not a pinfold CID.
	if _, err := s.SignedHead(ctx, cidV0()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("v0 CID: %v, want ErrMalformed", err)
	}
	// Corrupted storage: bytes under the CID's key do not hash to it.
	good, _ := EncodeSignedAck(fixtureSignedAck())
	c := CID(good)
	other, _ := EncodeSignedAck(fixtureSignedAck())
	other[len(other)-1] ^= 1
	if err := d.Put(ctx, blockKey(c), other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignedAck(ctx, c); !errors.Is(err, ErrMalformed) {
		t.Fatalf("corrupted block: %v, want ErrMalformed", err)
	}
	// Oversized stored block.
	big := make([]byte, MaxBlockSize+1)
	bc := CID(big)
	if err := d.Put(ctx, blockKey(bc), big); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignedAck(ctx, bc); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized block: %v, want ErrTooLarge", err)
	}
}

func members(n int) []Member {
	out := make([]Member, n)
	for i := range out {
		out[i] = fixtureMember(i + 1)
	}
	return out
}

func shards(n int) []Shard {
	out := make([]Shard, n)
	for i := range out {
		out[i] = fixtureShard(int64(i) * 2)
	}
	return out
}

func logEntries(n int) []LogEntry {
	out := make([]LogEntry, n)
	for i := range out {
		a := fixtureSignedAck()
		a.Ack.Shard = int64(i)
		out[i] = LogEntry{Ack: &a}
	}
	return out
}

func collect[T any](t *testing.T, seq func(func(T, error) bool)) []T {
	t.Helper()
	var out []T
	for v, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestListsAcrossChunks(t *testing.T) {
	ctx := context.Background()
	s, _ := newMemStore(t)
	for _, n := range []int{0, 1, MemberChunkSize - 1, MemberChunkSize, MemberChunkSize + 1, 2*MemberChunkSize + 7} {
		ms := members(n)
		c, err := s.PutMembers(ctx, ms)
		if err != nil {
			t.Fatalf("%d members: %v", n, err)
		}
		l, err := s.List(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if l.Count != int64(n) || len(l.Chunks) != (n+MemberChunkSize-1)/MemberChunkSize {
			t.Fatalf("%d members: list count %d in %d chunks", n, l.Count, len(l.Chunks))
		}
		got := collect(t, s.Members(ctx, c))
		if !reflect.DeepEqual(normalize(got), normalize(ms)) {
			t.Fatalf("%d members: read back differs", n)
		}
		// Equal lists give equal CIDs.
		c2, _ := s.PutMembers(ctx, members(n))
		if !c.Equals(c2) {
			t.Fatalf("%d members: equal lists gave %s and %s", n, c, c2)
		}
	}
	sh := shards(2*ShardChunkSize + 1)
	sc, err := s.PutShards(ctx, sh)
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, s.Shards(ctx, sc)); !reflect.DeepEqual(got, sh) {
		t.Fatal("shards read back differ")
	}
	le := logEntries(LogChunkSize + 3)
	lc, err := s.PutLog(ctx, le)
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, s.Log(ctx, lc)); !reflect.DeepEqual(normalize(got), normalize(le)) {
		t.Fatal("log read back differs")
	}
	// Stopping early is fine and yields nothing more.
	n := 0
	for _, err := range s.Shards(ctx, sc) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n == 5 {
			break
		}
	}
	if n != 5 {
		t.Fatalf("early stop after %d items", n)
	}
}

func TestListWriterOrder(t *testing.T) {
	ctx := context.Background()
	s, _ := newMemStore(t)
	w := s.MemberWriter()
	if err := w.Add(ctx, fixtureMember(2)); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(ctx, fixtureMember(1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("out of order: %v, want ErrMalformed", err)
	}
	// The writer stays failed.
	if err := w.Add(ctx, fixtureMember(3)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("after failure: %v", err)
	}
	if _, err := w.Finish(ctx); !errors.Is(err, ErrMalformed) {
		t.Fatalf("finish after failure: %v", err)
	}
	sw := s.ShardWriter()
	_ = sw.Add(ctx, fixtureShard(3))
	if err := sw.Add(ctx, fixtureShard(3)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("duplicate shard: %v, want ErrMalformed", err)
	}
	bad := fixtureMember(1)
	bad.Nickname = "\x07"
	if _, err := s.PutMembers(ctx, []Member{bad}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad member: %v", err)
	}
	// Log entries may come in any order.
	le := logEntries(3)
	slices.Reverse(le)
	if _, err := s.PutLog(ctx, le); err != nil {
		t.Fatalf("log in any order: %v", err)
	}
}

// putRaw stores a chunk or list without going through a ListWriter, to build
// lists that break the rules across blocks.
func putRaw[T any](t *testing.T, s *Store, bt *blockType[T], v T) cid.Cid {
	t.Helper()
	b, err := bt.encodeUnchecked(&v)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.put(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestListReadRejects(t *testing.T) {
	ctx := context.Background()
	s, _ := newMemStore(t)
	ms := members(MemberChunkSize + 10)
	full := putRaw(t, s, memberChunkType, MemberChunk{Items: ms[:MemberChunkSize]})
	short := putRaw(t, s, memberChunkType, MemberChunk{Items: ms[:10]})
	tail := putRaw(t, s, memberChunkType, MemberChunk{Items: ms[MemberChunkSize:]})
	shardChunk := putRaw(t, s, shardChunkType, ShardChunk{Items: shards(3)})
	for _, tc := range []struct {
		name string
		list List
		want error
	}{
		{"short chunk before the last", List{Count: 20, Chunks: []cid.Cid{short, tail}}, ErrMalformed},
		{"order across chunks", List{Count: MemberChunkSize + 10, Chunks: []cid.Cid{full, short}}, ErrMalformed},
		{"count too high for chunks", List{Count: MemberChunkSize + 11, Chunks: []cid.Cid{full, tail}}, ErrMalformed},
		{"count too low for chunks", List{Count: 9, Chunks: []cid.Cid{short}}, ErrMalformed},
		{"count exceeds one chunk", List{Count: MemberChunkSize + 1, Chunks: []cid.Cid{full}}, ErrMalformed},
		{"chunk of another type", List{Count: 3, Chunks: []cid.Cid{shardChunk}}, ErrMalformed},
		{"missing chunk", List{Count: 3, Chunks: []cid.Cid{fakeCID("nope")}}, format.ErrNotFound{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := putRaw(t, s, listType, tc.list)
			var err error
			n := 0
			for _, e := range s.Members(ctx, c) {
				if e != nil {
					err = e
				}
				n++
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("read: %v, want %v", err, tc.want)
			}
			if !errors.Is(walkListErr(ctx, s, c), tc.want) {
				t.Fatal("walk accepted the list")
			}
		})
	}
	// A list that is not a list.
	if _, err := collectErr(s.Members(ctx, full)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("chunk read as list: %v", err)
	}
}

func walkListErr(ctx context.Context, s *Store, c cid.Cid) error {
	w := &walker{s: s, seen: map[cid.Cid]struct{}{}, limit: 1 << 20, yield: func(cid.Cid, error) bool { return true }}
	return walkList(ctx, w, memberKind, c)
}

func collectErr[T any](seq func(func(T, error) bool)) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

func fixtureState(nMembers, nShards, nLog int) State {
	return State{
		Pinset:     fixturePinset(),
		Shards:     shards(nShards),
		Members:    members(nMembers),
		Allocation: fixtureAllocation(),
		Log:        logEntries(nLog),
	}
}

// buildSigned builds and stores a head over st with a fake signature.
func buildSigned(t testing.TB, s *Store, parent *cid.Cid, seq int64, st State) (cid.Cid, Built) {
	t.Helper()
	ctx := context.Background()
	h := fixtureHead()
	h.Parent, h.Seq = parent, seq
	h, built, err := s.BuildHead(ctx, h, st)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.PutSignedHead(ctx, SignedHead{Head: h, Sig: fakeSig(1)})
	if err != nil {
		t.Fatal(err)
	}
	return c, built
}

// expectedBlocks lists the blocks of one head computed from what was built.
func expectedBlocks(t *testing.T, s *Store, head cid.Cid, b Built) map[cid.Cid]bool {
	t.Helper()
	ctx := context.Background()
	want := map[cid.Cid]bool{head: true, b.Pinset: true, b.Shards: true, b.Members: true, b.Allocation: true}
	lists := []cid.Cid{b.Shards, b.Members}
	if b.Log != nil {
		want[*b.Log] = true
		lists = append(lists, *b.Log)
	}
	for _, lc := range lists {
		l, err := s.List(ctx, lc)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range l.Chunks {
			want[c] = true
		}
	}
	return want
}

func walkSet(t *testing.T, s *Store, head cid.Cid, opt WalkOptions) (map[cid.Cid]bool, error) {
	t.Helper()
	got := map[cid.Cid]bool{}
	for c, err := range s.Walk(context.Background(), head, opt) {
		if err != nil {
			return got, err
		}
		if got[c] {
			t.Fatalf("walk listed %s twice", c)
		}
		got[c] = true
	}
	return got, nil
}

// TestBuildHeadLogVersion: audit entries go only into the logs of heads of
// version 2 and later; a version 1 head with one is refused before
// anything is written.
func TestBuildHeadLogVersion(t *testing.T) {
	ctx := context.Background()
	s, _ := newMemStore(t)
	st := fixtureState(2, 2, 1)
	au := fixtureSignedAudit()
	st.Log = append(st.Log, LogEntry{Audit: &au})
	h := fixtureHead()
	h.Version = 1
	if _, _, err := s.BuildHead(ctx, h, st); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "log[1]") {
		t.Fatalf("version 1 head with an audit entry: %v, want ErrMalformed naming log[1]", err)
	}
	h.Version = 2
	h2, built, err := s.BuildHead(ctx, h, st)
	if err != nil {
		t.Fatalf("version 2 head with an audit entry: %v", err)
	}
	var kinds []string
	for e, err := range s.Log(ctx, *built.Log) {
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckLogEntryVersion(h2.Version, e); err != nil {
			t.Fatal(err)
		}
		if CheckLogEntryVersion(1, e) != nil {
			kinds = append(kinds, "audit")
		} else {
			kinds = append(kinds, "ack")
		}
	}
	if strings.Join(kinds, ",") != "ack,audit" {
		t.Fatalf("log read back as %v, want ack,audit", kinds)
	}
}

func TestBuildHeadAndWalk(t *testing.T) {
	ctx := context.Background()
	s, _ := newMemStore(t)
	g, gb := buildSigned(t, s, nil, 0, fixtureState(3, 2, 0))
	if gb.Log != nil {
		t.Fatal("empty log gave a log link")
	}
	a, err := s.Allocation(ctx, gb.Allocation)
	if err != nil || a.Log != nil {
		t.Fatalf("genesis allocation: %+v, %v", a, err)
	}
	st := fixtureState(MemberChunkSize+1, ShardChunkSize+1, LogChunkSize+1)
	h1, b1 := buildSigned(t, s, &g, 1, st)

	sh, err := s.SignedHead(ctx, h1)
	if err != nil {
		t.Fatal(err)
	}
	if sh.Head.Pinset != b1.Pinset || sh.Head.Members != b1.Members || sh.Head.Allocation != b1.Allocation {
		t.Fatal("head links differ from the built CIDs")
	}
	ps, _ := s.Pinset(ctx, b1.Pinset)
	if ps.Shards != b1.Shards {
		t.Fatal("pinset does not link the built shard list")
	}
	if got := collect(t, s.Members(ctx, sh.Head.Members)); len(got) != MemberChunkSize+1 {
		t.Fatalf("%d members", len(got))
	}

	want := expectedBlocks(t, s, h1, b1)
	got, err := walkSet(t, s, h1, WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("walk listed %d blocks, want %d", len(got), len(want))
	}
	if len(want) != 1+1+1+2+1+2+1+1+2 {
		t.Fatalf("unexpected block count %d", len(want))
	}

	// With its parent: the union, each once.
	for c := range expectedBlocks(t, s, g, gb) {
		want[c] = true
	}
	got, err = walkSet(t, s, h1, WalkOptions{Parents: 5})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("walk with parents listed %d blocks, want %d", len(got), len(want))
	}

	// Limits.
	if _, err := walkSet(t, s, h1, WalkOptions{MaxBlocks: 5}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("walk over limit: %v, want ErrTooLarge", err)
	}
	// Early stop.
	n := 0
	for range s.Walk(ctx, h1, WalkOptions{}) {
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("early stop after %d", n)
	}
}

func TestWalkMissingBlock(t *testing.T) {
	ctx := context.Background()
	s, d := newMemStore(t)
	h, b := buildSigned(t, s, nil, 0, fixtureState(2, 2, 2))
	l, _ := s.List(ctx, *b.Log)
	if err := d.Delete(ctx, blockKey(l.Chunks[0])); err != nil {
		t.Fatal(err)
	}
	_, err := walkSet(t, s, h, WalkOptions{})
	if !errors.Is(err, format.ErrNotFound{}) {
		t.Fatalf("walk with a missing chunk: %v, want ErrNotFound", err)
	}
}

// TestBadger4 runs the store on a real badger4 datastore, across a reopen.
func TestBadger4(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *badger.Datastore {
		d, err := badger.NewDatastore(dir, &badger.DefaultOptions)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := open()
	s := NewStore(blockstore.NewBlockstore(d))
	h, b := buildSigned(t, s, nil, 0, fixtureState(MemberChunkSize+5, 10, 3))
	want, err := walkSet(t, s, h, WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = open()
	defer d.Close()
	s = NewStore(blockstore.NewBlockstore(d))
	got, err := walkSet(t, s, h, WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(got, expectedBlocks(t, s, h, b)) {
		t.Fatal("blocks after reopen differ")
	}
	if ms := collect(t, s.Members(ctx, b.Members)); len(ms) != MemberChunkSize+5 {
		t.Fatalf("%d members after reopen", len(ms))
	}
}
