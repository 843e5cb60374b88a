package audit

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	mh "github.com/multiformats/go-multihash"
)

// shardFixture is a shard of four pins: two balanced files with narrow
// nodes (paths of 4 blocks), a folder of two files (5 blocks) and a
// one-block file (a raw leaf).
func shardFixture(t testing.TB) (blockstore.Blockstore, []PinRef) {
	t.Helper()
	bs := memBlocks()
	a := fileDAG(t, bs, 1, 300<<10, 4<<10, 8)
	b := fileDAG(t, bs, 2, 64<<10, 1<<10, 4)
	d := dirDAG(t, bs, map[string]ipld.Node{
		"x": fileDAG(t, bs, 3, 40<<10, 2<<10, 4),
		"y": fileDAG(t, bs, 4, 10<<10, 1<<10, 3),
	})
	one := fileDAG(t, bs, 5, 3<<10, 4<<10, 4)
	var pins []PinRef
	for _, c := range []cid.Cid{a.Cid(), b.Cid(), d.Cid(), one.Cid()} {
		size, _ := dagSize(t, bs, c)
		pins = append(pins, PinRef{CID: c, Size: size})
	}
	return bs, pins
}

func answer(t testing.TB, bs Blocks, ch Challenge) Response {
	t.Helper()
	resp, err := Answer(context.Background(), bs, ch, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestHonestHolderPasses: property over seeds: a holder with every block
// passes, the paths are root-to-leaf, and the answer survives the wire.
func TestHonestHolderPasses(t *testing.T) {
	t.Parallel()
	bs, pins := shardFixture(t)
	depths := map[int]int{}
	for seed := uint64(0); seed < 200; seed++ {
		ch := challengeFor(t, pins, 1+int(seed%8), seed)
		resp := answer(t, bs, ch)
		var buf bytes.Buffer
		if err := WriteResponse(&buf, resp); err != nil {
			t.Fatal(err)
		}
		wire, err := ReadResponse(&buf, len(ch.Roots), DefaultMaxResponse)
		if err != nil {
			t.Fatalf("seed %d: read back: %v", seed, err)
		}
		n, err := Verify(ch, wire)
		if err != nil || n != len(ch.Roots) {
			t.Fatalf("seed %d: honest answer: %d, %v", seed, n, err)
		}
		for i, p := range wire.Paths {
			depths[len(p.Blocks)]++
			last := p.Blocks[len(p.Blocks)-1]
			want := pathCIDs(t, bs, ch, i)
			if ls, _ := links(want[len(want)-1], last); len(ls) != 0 {
				t.Fatalf("seed %d path %d ends at a block with links", seed, i)
			}
		}
	}
	t.Logf("path lengths (blocks: paths): %v", depths)
	if len(depths) < 3 {
		t.Fatalf("fixture paths have too few distinct lengths: %v", depths)
	}
}

// deleting removes blocks from a store for the length of a test.
type deleting struct {
	Blocks
	gone map[cid.Cid]bool
}

func (d deleting) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if d.gone[c] {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	return d.Blocks.Get(ctx, c)
}

// TestMissingBlockOnPathFails: property: delete any one block of a chosen
// path (root, inner node or leaf): the answer admits it and fails.
func TestMissingBlockOnPathFails(t *testing.T) {
	t.Parallel()
	bs, pins := shardFixture(t)
	for seed := uint64(0); seed < 200; seed++ {
		ch := challengeFor(t, pins, 4, seed)
		i := int(seed % 4)
		path := pathCIDs(t, bs, ch, i)
		victim := path[int(seed/4)%len(path)]
		resp := answer(t, deleting{bs, map[cid.Cid]bool{victim: true}}, ch)
		n, err := Verify(ch, resp)
		if !errors.Is(err, ErrBlockMissing) || !Failed(err) {
			t.Fatalf("seed %d: missing %s on path %d: %v, want ErrBlockMissing", seed, victim, i, err)
		}
		// Paths before the first one with the victim passed.
		first := -1
		for j := range ch.Roots {
			for _, c := range pathCIDs(t, bs, ch, j) {
				if c == victim && first < 0 {
					first = j
				}
			}
		}
		if n != first {
			t.Fatalf("seed %d: %d paths verified, want %d", seed, n, first)
		}
	}
}

// TestLyingHolderFails: every way of answering other than the rule's is
// caught, with its own error.
func TestLyingHolderFails(t *testing.T) {
	t.Parallel()
	bs, pins := shardFixture(t)
	ch := challengeFor(t, pins, 4, 42)
	honest := answer(t, bs, ch)
	clone := func() Response {
		r := Response{Paths: make([]Path, len(honest.Paths))}
		for i, p := range honest.Paths {
			r.Paths[i] = Path{Blocks: append([][]byte(nil), p.Blocks...), Missing: p.Missing}
		}
		return r
	}
	deep := -1
	for i, p := range honest.Paths {
		if len(p.Blocks) >= 3 {
			deep = i
		}
	}
	if deep < 0 {
		t.Fatal("no path of 3 blocks in the fixture")
	}
	other := challengeFor(t, pins, 4, 43)
	otherAnswer := answer(t, bs, other)
	for _, tc := range []struct {
		name   string
		mutate func(r *Response)
		want   error
	}{
		{"leaf bit flipped", func(r *Response) {
			p := r.Paths[deep].Blocks
			last := bytes.Clone(p[len(p)-1])
			last[len(last)/2] ^= 1
			p[len(p)-1] = last
		}, ErrWrongBlock},
		{"root replaced", func(r *Response) { r.Paths[deep].Blocks[0] = []byte("not the root") }, ErrWrongBlock},
		{"another leaf of the same file", func(r *Response) {
			p := r.Paths[deep].Blocks
			for _, q := range otherAnswer.Paths {
				if len(q.Blocks) == len(p) && bytes.Equal(q.Blocks[0], p[0]) && !bytes.Equal(q.Blocks[len(q.Blocks)-1], p[len(p)-1]) {
					p[len(p)-1] = q.Blocks[len(q.Blocks)-1]
					return
				}
			}
			p[len(p)-1] = []byte("x")
		}, ErrWrongBlock},
		{"path cut short", func(r *Response) { r.Paths[deep].Blocks = r.Paths[deep].Blocks[:2] }, ErrPathTooShort},
		{"extra block", func(r *Response) {
			r.Paths[deep].Blocks = append(r.Paths[deep].Blocks, r.Paths[deep].Blocks[0])
		}, ErrPathTooLong},
		{"paths swapped", func(r *Response) {
			r.Paths[deep], r.Paths[(deep+1)%4] = r.Paths[(deep+1)%4], r.Paths[deep]
			if bytes.Equal(r.Paths[deep].Blocks[0], r.Paths[(deep+1)%4].Blocks[0]) {
				r.Paths[deep].Blocks = r.Paths[deep].Blocks[:1]
			}
		}, nil},
		{"one path missing", func(r *Response) { r.Paths = r.Paths[:3] }, ErrMalformed},
		{"empty path", func(r *Response) { r.Paths[deep].Blocks = nil }, ErrPathTooShort},
		{"admits missing", func(r *Response) { r.Paths[deep] = Path{Missing: true} }, ErrBlockMissing},
		{"answer to another nonce", func(r *Response) { *r = otherAnswer }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := clone()
			tc.mutate(&r)
			_, err := Verify(ch, r)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
			if !Failed(err) {
				t.Fatalf("%v is not a failure", err)
			}
			t.Log(err)
		})
	}
	if _, err := Verify(ch, honest); err != nil {
		t.Fatalf("honest answer after the mutations: %v", err)
	}
}

// TestPathWeighting: paths land on leaves in proportion to their bytes:
// a folder of a 96 KiB and a 32 KiB file gets about 3:1.
func TestPathWeighting(t *testing.T) {
	t.Parallel()
	bs := memBlocks()
	big := fileDAG(t, bs, 10, 96<<10, 4<<10, 4)
	small := fileDAG(t, bs, 11, 32<<10, 4<<10, 4)
	d := dirDAG(t, bs, map[string]ipld.Node{"big": big, "small": small})
	size, _ := dagSize(t, bs, d.Cid())
	pins := []PinRef{{CID: d.Cid(), Size: size}}
	const trials = 4000
	hitsBig := 0
	leaves := map[cid.Cid]int{}
	for seed := uint64(0); seed < trials/MaxSamples; seed++ {
		ch := challengeFor(t, pins, MaxSamples, seed)
		for i := range ch.Roots {
			p := pathCIDs(t, bs, ch, i)
			if p[1] == big.Cid() {
				hitsBig++
			}
			leaves[p[len(p)-1]]++
		}
	}
	share := float64(hitsBig) / trials
	t.Logf("share of paths through the 96 KiB file: %.3f (want about 0.75); %d distinct leaves of 32", share, len(leaves))
	if math.Abs(share-0.75) > 0.03 {
		t.Fatalf("share %.3f, want 0.75 ± 0.03", share)
	}
	if len(leaves) != 32 {
		t.Fatalf("%d distinct leaves reached, want all 32", len(leaves))
	}
}

// cborBlock encodes a dag-cbor map {"links": [...], "data": s}.
func cborBlock(t testing.TB, bs blockstore.Blockstore, s string, children ...cid.Cid) cid.Cid {
	t.Helper()
	n, err := qp.BuildMap(basicnode.Prototype.Any, 2, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "data", qp.String(s))
		qp.MapEntry(ma, "links", qp.List(int64(len(children)), func(la datamodel.ListAssembler) {
			for _, c := range children {
				qp.ListEntry(la, qp.Link(cidlink.Link{Cid: c}))
			}
		}))
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := dagcbor.Encode(n, &buf); err != nil {
		t.Fatal(err)
	}
	c, err := cid.Prefix{Version: 1, Codec: codecDagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := blocks.NewBlockWithCid(buf.Bytes(), c)
	if err := bs.Put(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDagCBORAndOddLinks: dag-cbor links are followed uniformly; identity
// CIDs, weak hashes and unknown codecs end a path.
func TestDagCBORAndOddLinks(t *testing.T) {
	t.Parallel()
	bs := memBlocks()
	raw := func(s string) cid.Cid {
		b := blocks.NewBlock([]byte(s)) // CIDv0 dag-pb: not decodable as dag-pb: a leaf
		c, _ := cid.Prefix{Version: 1, Codec: codecRaw, MhType: mh.SHA2_256, MhLength: -1}.Sum(b.RawData())
		bb, _ := blocks.NewBlockWithCid(b.RawData(), c)
		if err := bs.Put(context.Background(), bb); err != nil {
			t.Fatal(err)
		}
		return c
	}
	identity, _ := cid.Prefix{Version: 1, Codec: codecRaw, MhType: mh.IDENTITY, MhLength: -1}.Sum([]byte("inline"))
	murmur, _ := cid.Prefix{Version: 1, Codec: codecRaw, MhType: mh.MURMUR3X64_64, MhLength: -1}.Sum([]byte("weak"))
	leaves := []cid.Cid{raw("a"), raw("b"), raw("c")}
	mid := cborBlock(t, bs, "mid", append([]cid.Cid{identity, murmur}, leaves...)...)
	root := cborBlock(t, bs, "root", mid, identity)
	pins := []PinRef{{CID: root, Size: 100}}
	seen := map[cid.Cid]int{}
	for seed := uint64(0); seed < 30; seed++ {
		ch := challengeFor(t, pins, 8, seed)
		resp := answer(t, bs, ch)
		if _, err := Verify(ch, resp); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for i := range ch.Roots {
			p := pathCIDs(t, bs, ch, i)
			if len(p) != 3 || p[1] != mid {
				t.Fatalf("seed %d: path %v, want root, mid, a leaf", seed, p)
			}
			seen[p[2]]++
		}
	}
	for _, l := range leaves {
		if seen[l] < 40 {
			t.Fatalf("leaf %s reached %d times of 240, want about 80: %v", l, seen[l], seen)
		}
	}
}

func TestMaxDepth(t *testing.T) {
	t.Parallel()
	bs := memBlocks()
	c := cborBlock(t, bs, "bottom")
	for i := 0; i < MaxDepth+5; i++ {
		c = cborBlock(t, bs, "level", c)
	}
	ch := challengeFor(t, []PinRef{{CID: c, Size: 1}}, 1, 1)
	resp := answer(t, bs, ch)
	if got := len(resp.Paths[0].Blocks); got != MaxDepth {
		t.Fatalf("path of %d blocks, want MaxDepth %d", got, MaxDepth)
	}
	if _, err := Verify(ch, resp); err != nil {
		t.Fatal(err)
	}
	// One more block than the rule allows is refused.
	b, _ := bs.Get(context.Background(), pathCIDs(t, bs, ch, 0)[MaxDepth-1])
	ls, _ := links(b.Cid(), b.RawData())
	nb, _ := bs.Get(context.Background(), ls[0].c)
	resp.Paths[0].Blocks = append(resp.Paths[0].Blocks, nb.RawData())
	if _, err := Verify(ch, resp); !errors.Is(err, ErrPathTooLong) {
		t.Fatalf("path over MaxDepth: %v, want ErrPathTooLong", err)
	}
}
