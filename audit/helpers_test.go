package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunk "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/pinfold/pinfold/dag"
)

// seeded is a deterministic byte stream for a test seed.
type seeded struct{ r *rand.ChaCha8 }

func newSeeded(seed uint64) *seeded {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return &seeded{rand.NewChaCha8(s)}
}

func (s *seeded) Read(p []byte) (int, error) { return s.r.Read(p) }

// memBlocks is an in-memory block store (boxo's, on a map datastore).
func memBlocks() blockstore.Blockstore {
	return blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
}

// importPrefix is pinfold's import profile (content/import.go): CIDv1,
// dag-pb nodes over raw leaves, sha2-256.
var importPrefix = cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}

// fileDAG imports size random bytes (from seed) as a balanced UnixFS file
// of chunk-sized raw leaves and at most width links per node.
func fileDAG(t testing.TB, bs blockstore.Blockstore, seed uint64, size, chunkSize int64, width int) ipld.Node {
	t.Helper()
	ctx := context.Background()
	dserv := merkledag.NewDAGService(blockservice.New(bs, nil))
	data := make([]byte, size)
	newSeeded(seed).Read(data)
	params := helpers.DagBuilderParams{Maxlinks: width, RawLeaves: true, CidBuilder: importPrefix, Dagserv: ipld.NewBufferedDAG(ctx, dserv)}
	db, err := params.New(chunk.NewSizeSplitter(bytes.NewReader(data), chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := params.Dagserv.(*ipld.BufferedDAG).Commit(); err != nil {
		t.Fatal(err)
	}
	return nd
}

// dirDAG puts files under one UnixFS folder.
func dirDAG(t testing.TB, bs blockstore.Blockstore, files map[string]ipld.Node) ipld.Node {
	t.Helper()
	ctx := context.Background()
	dserv := merkledag.NewDAGService(blockservice.New(bs, nil))
	d, err := uio.NewDirectory(dserv, uio.WithCidBuilder(importPrefix))
	if err != nil {
		t.Fatal(err)
	}
	for name, nd := range files {
		if err := d.AddChild(ctx, name, nd); err != nil {
			t.Fatal(err)
		}
	}
	nd, err := d.GetNode()
	if err != nil {
		t.Fatal(err)
	}
	if err := dserv.Add(ctx, nd); err != nil {
		t.Fatal(err)
	}
	return nd
}

// dagSize is the bytes of the distinct blocks under c, and their CIDs.
func dagSize(t testing.TB, bs blockstore.Blockstore, c cid.Cid) (int64, []cid.Cid) {
	t.Helper()
	seen := map[cid.Cid]bool{}
	var total int64
	var order []cid.Cid
	var walk func(c cid.Cid)
	walk = func(c cid.Cid) {
		if seen[c] {
			return
		}
		seen[c] = true
		b, err := bs.Get(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		total += int64(len(b.RawData()))
		order = append(order, c)
		ls, _ := links(c, b.RawData())
		for _, l := range ls {
			walk(l.c)
		}
	}
	walk(c)
	return total, order
}

func testCluster(t testing.TB) peer.ID {
	id, err := peer.IDFromBytes(append([]byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}, bytes.Repeat([]byte{7}, 32)...))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func testHead() cid.Cid { return dag.CID([]byte("head")) }

func testDigest() []byte {
	s := sha256.Sum256([]byte("shard"))
	return append([]byte{0x12, 0x20}, s[:]...)
}

// challengeFor samples k roots of pins with a seeded stream.
func challengeFor(t testing.TB, pins []PinRef, k int, seed uint64) Challenge {
	t.Helper()
	ch, err := NewChallenge(testCluster(t), 3, testHead(), testDigest(), pins, k, newSeeded(seed))
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// pathCIDs lists the CIDs of the path the rule picks for root i of ch,
// read from bs (every block present).
func pathCIDs(t testing.TB, bs blockstore.Blockstore, ch Challenge, i int) []cid.Cid {
	t.Helper()
	c := ch.Roots[i]
	var out []cid.Cid
	for d := 0; ; d++ {
		out = append(out, c)
		b, err := bs.Get(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		nxt, ok := next(&ch.Nonce, i, d, c, b.RawData())
		if !ok {
			return out
		}
		c = nxt
	}
}
