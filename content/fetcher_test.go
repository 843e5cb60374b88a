package content

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	basicnode "github.com/ipld/go-ipld-prime/node/basic"
	mh "github.com/multiformats/go-multihash"
)

// sharedPins builds two folders on the source that share one file:
// a = {shared, onlyA}, b = {shared, onlyB}.
func sharedPins(t *testing.T, p *pipe) (a, b Imported) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"a", "b"} {
		writeRandFile(t, filepath.Join(dir, d, "shared.bin"), 1, 300<<10)
	}
	writeRandFile(t, filepath.Join(dir, "a", "only-a.bin"), 2, 200<<10)
	writeRandFile(t, filepath.Join(dir, "b", "only-b.bin"), 3, 100<<10)
	a = importOne(t, p.srcDAG(), filepath.Join(dir, "a"), 64<<10)
	b = importOne(t, p.srcDAG(), filepath.Join(dir, "b"), 64<<10)
	return a, b
}

func TestReleaseKeepsSharedBlocks(t *testing.T) {
	ctx := context.Background()
	p := newPipe(t)
	a, b := sharedPins(t, p)
	f := NewFetcher(p.net, p.dst.Blocks, p.dst.Datastore, fastConfig())
	for _, im := range []Imported{a, b} {
		st, err := f.Fetch(ctx, im.CID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Bytes != im.Size || st.Blocks != im.Blocks {
			t.Errorf("Fetch(%s) = %+v; Import said %d blocks, %d bytes", im.CID, st, im.Blocks, im.Size)
		}
		if ok, kst, err := f.Kept(ctx, im.CID); err != nil || !ok || kst != st {
			t.Errorf("Kept = %v, %+v, %v; want true, %+v", ok, kst, err, st)
		}
	}
	pins, err := f.Pins(ctx)
	if err != nil || len(pins) != 2 {
		t.Fatalf("Pins = %v, %v; want 2", pins, err)
	}
	for _, pin := range pins {
		if pin.State != PinKept || (!pin.Root.Equals(a.CID) && !pin.Root.Equals(b.CID)) {
			t.Errorf("Pins has %+v", pin)
		}
	}
	blocksA, blocksB := dagBlocks(t, p.srcDAG(), a.CID), dagBlocks(t, p.srcDAG(), b.CID)
	union := map[string]int64{}
	var onlyA Stat
	for k, n := range blocksA {
		union[k] = n
		if _, ok := blocksB[k]; !ok {
			onlyA.Blocks++
			onlyA.Bytes += n
		}
	}
	for k, n := range blocksB {
		union[k] = n
	}
	if onlyA.Blocks == 0 || onlyA.Blocks == int64(len(blocksA)) {
		t.Fatalf("test setup: %d of %d blocks of a are its own; want some shared", onlyA.Blocks, len(blocksA))
	}
	if u, _ := f.Usage(ctx); u != sumSizes(union) {
		t.Errorf("Usage = %+v; want %+v (distinct blocks of both)", u, sumSizes(union))
	}

	freed, err := f.Release(ctx, a.CID)
	if err != nil {
		t.Fatal(err)
	}
	if pins, _ := f.Pins(ctx); len(pins) != 1 || !pins[0].Root.Equals(b.CID) {
		t.Errorf("Pins after Release(a) = %v; want only b", pins)
	}
	if freed != onlyA.Bytes {
		t.Errorf("Release(a) freed %d; want %d (a's own blocks)", freed, onlyA.Bytes)
	}
	for k := range blocksA {
		_, shared := blocksB[k]
		if got := present(t, p.dst.Blocks, k); got != shared {
			t.Errorf("block of a (shared %v) present = %v", shared, got)
		}
	}
	if ok, _, _ := f.Kept(ctx, a.CID); ok {
		t.Error("a still kept after Release")
	}
	compareDigests(t, treeDigests(t, offlineDAG(p.dst.Blocks), b.CID), treeDigests(t, p.srcDAG(), b.CID))
	if u, _ := f.Usage(ctx); u != sumSizes(blocksB) {
		t.Errorf("Usage = %+v; want %+v", u, sumSizes(blocksB))
	}
	// Releasing twice is harmless.
	if freed, err := f.Release(ctx, a.CID); err != nil || freed != 0 {
		t.Errorf("second Release = %d, %v; want 0, nil", freed, err)
	}
	if _, err := f.Release(ctx, b.CID); err != nil {
		t.Fatal(err)
	}
	if u, _ := f.Usage(ctx); u != (Stat{}) {
		t.Errorf("Usage after releasing all = %+v; want zero", u)
	}
	for _, pfx := range []string{"/ref/", "/claim/", "/gc/", "/list/", "/pin/"} {
		if k := keysUnder(t, p.dst.Datastore, nsRoot+pfx); len(k) != 0 {
			t.Errorf("%d keys left under %s: %v", len(k), pfx, k[:min(3, len(k))])
		}
	}
}

// foreignBlocks stores, directly in the destination, a dag-cbor block
// (like a signed head) and a dag-pb block (like a go-ds-crdt delta), then
// builds on the source a pin whose DAG contains both.
func foreignBlocks(t *testing.T, p *pipe) (pin cid.Cid, head, crdt blocks.Block) {
	t.Helper()
	ctx := context.Background()
	nd, err := qp.BuildMap(basicnode.Prototype.Any, 2, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "seq", qp.Int(7))
		qp.MapEntry(ma, "sig", qp.Bytes([]byte("signature")))
	})
	if err != nil {
		t.Fatal(err)
	}
	lp := cidlink.LinkPrototype{Prefix: cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}}
	var buf strings.Builder
	if err := dagcbor.Encode(nd, &buf); err != nil {
		t.Fatal(err)
	}
	hc, err := lp.Prefix.Sum([]byte(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	head, _ = blocks.NewBlockWithCid([]byte(buf.String()), hc)
	delta := merkledag.NodeWithData([]byte("crdt delta: /pins/bafy... added"))
	crdt = delta
	for _, b := range []blocks.Block{head, crdt} {
		if err := p.dst.Blocks.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := p.src.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// A folder on the source linking both, plus a file of its own.
	file := filepath.Join(t.TempDir(), "f.bin")
	writeRandFile(t, file, 5, 100<<10)
	fim := importOne(t, p.srcDAG(), file, 16<<10)
	dir := ft.EmptyDirNode()
	_ = dir.SetCidBuilder(cidPrefix)
	for name, c := range map[string]cid.Cid{"head": head.Cid(), "crdt": crdt.Cid(), "file": fim.CID} {
		if err := dir.AddRawLink(name, &ipld.Link{Cid: c}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.src.Put(ctx, dir); err != nil {
		t.Fatal(err)
	}
	return dir.Cid(), head, crdt
}

func TestGCNeverDeletesForeignBlocks(t *testing.T) {
	ctx := context.Background()
	p := newPipe(t)
	pin, head, crdt := foreignBlocks(t, p)
	f := NewFetcher(p.net, p.dst.Blocks, p.dst.Datastore, fastConfig())
	st, err := f.Fetch(ctx, pin, nil)
	if err != nil {
		t.Fatal(err)
	}
	all := dagBlocks(t, p.srcDAG(), pin)
	if st != sumSizes(all) {
		t.Errorf("Fetch = %+v; want %+v", st, sumSizes(all))
	}
	freed, err := f.Release(ctx, pin)
	if err != nil {
		t.Fatal(err)
	}
	foreign := map[string]bool{string(head.Cid().Hash()): true, string(crdt.Cid().Hash()): true}
	var want int64
	for k, n := range all {
		if foreign[k] {
			if !present(t, p.dst.Blocks, k) {
				t.Errorf("foreign block %x deleted", k)
			}
			continue
		}
		want += n
		if present(t, p.dst.Blocks, k) {
			t.Errorf("fetched block %x kept after Release", k)
		}
	}
	if freed != want {
		t.Errorf("freed %d; want %d (all but the foreign blocks)", freed, want)
	}
	// Still readable: the head decodes as dag-cbor.
	if _, err := offlineDAG(p.dst.Blocks).Get(ctx, head.Cid()); err != nil {
		t.Errorf("head block after GC: %v", err)
	}
}

func TestFetchRetriesTransientFailures(t *testing.T) {
	ctx := context.Background()
	p := newPipe(t)
	file := filepath.Join(t.TempDir(), "f.bin")
	writeRandFile(t, file, 1, 40<<10)
	im := importOne(t, p.srcDAG(), file, 8<<10)

	cfg := fastConfig()
	cfg.Attempts = 3
	p.ex.fail.Store(2) // two failures, then success: within 3 attempts
	f := NewFetcher(p.net, p.dst.Blocks, p.dst.Datastore, cfg)
	st, err := f.Fetch(ctx, im.CID, nil)
	if err != nil {
		t.Fatalf("Fetch with 2 transient failures: %v", err)
	}
	if st.Blocks != im.Blocks {
		t.Errorf("fetched %d blocks; want %d", st.Blocks, im.Blocks)
	}

	// A block that never comes: ErrUnavailable after Attempts tries.
	q := newPipe(t)
	im2 := importOne(t, q.srcDAG(), file, 8<<10)
	q.ex.fail.Store(1 << 40)
	f2 := NewFetcher(q.net, q.dst.Blocks, q.dst.Datastore, cfg)
	_, err = f2.Fetch(ctx, im2.CID, nil)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), im2.CID.String()) {
		t.Fatalf("err = %v; want ErrUnavailable naming %s", err, im2.CID)
	}
	if n := q.ex.asked.Load(); n != int64(cfg.Attempts) {
		t.Errorf("asked %d times; want %d", n, cfg.Attempts)
	}
	if ok, _, _ := f2.Kept(ctx, im2.CID); ok {
		t.Error("failed pin is kept")
	}
}

// TestFetchMalformed puts blocks on the source whose bytes match their
// CID but do not decode, or that link to CIDs the walk refuses.
func TestFetchMalformed(t *testing.T) {
	md5, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.MD5, MhLength: -1}.Sum([]byte("x"))
	okLeaf := blocks.NewBlock([]byte("leaf"))
	withLink := func(c cid.Cid) []byte {
		nd := merkledag.NodeWithData(nil)
		_ = nd.AddRawLink("x", &ipld.Link{Cid: c})
		return nd.RawData()
	}
	tests := []struct {
		name  string
		codec uint64
		data  []byte
		want  error
	}{
		{"dag-pb garbage", cid.DagProtobuf, []byte{0xff, 0xff, 0xff, 0x01}, ErrMalformed},
		{"dag-cbor garbage", cid.DagCBOR, []byte{0xbf, 0x61}, ErrMalformed},
		{"unknown codec", 0x9999, []byte("?"), ErrMalformed},
		{"link to md5", cid.DagProtobuf, withLink(md5), ErrMalformed},
		{"link to identity dag-cbor", cid.DagProtobuf, withLink(identityCID(t, cid.DagCBOR, []byte{0xa0})), ErrMalformed},
		{"fine", cid.DagProtobuf, withLink(cid.NewCidV1(cid.Raw, okLeaf.Cid().Hash())), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			p := newPipe(t)
			root, _ := cid.Prefix{Version: 1, Codec: tt.codec, MhType: mh.SHA2_256, MhLength: -1}.Sum(tt.data)
			blk, _ := blocks.NewBlockWithCid(tt.data, root)
			for _, b := range []blocks.Block{blk, okLeaf} {
				if err := p.src.Put(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
			f := NewFetcher(p.net, p.dst.Blocks, p.dst.Datastore, fastConfig())
			_, err := f.Fetch(ctx, root, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Fetch err = %v; want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), root.String()) {
				t.Errorf("error %q does not name the root %s", err, root)
			}
			if tt.want != nil && p.ex.asked.Load() > 2 {
				t.Errorf("asked %d times: a malformed block must not be retried", p.ex.asked.Load())
			}
			_, err = DAGStat(ctx, offlineDAG(p.src), root, 2)
			if !errors.Is(err, tt.want) && !(tt.want != nil && err != nil) {
				t.Errorf("DAGStat err = %v; want an error like %v", err, tt.want)
			}
		})
	}
}

func identityCID(t *testing.T, codec uint64, data []byte) cid.Cid {
	t.Helper()
	h, err := mh.Sum(data, mh.IDENTITY, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(codec, h)
}

func TestFetchLimits(t *testing.T) {
	ctx := context.Background()
	p := newPipe(t)
	file := filepath.Join(t.TempDir(), "f.bin")
	writeRandFile(t, file, 1, 20<<10)
	im := importOne(t, p.srcDAG(), file, 1<<10) // 20 leaves + root
	tests := []struct {
		name string
		set  func(*FetcherConfig)
		want error
	}{
		{"blocks", func(c *FetcherConfig) { c.MaxBlocks = 20 }, ErrTooLarge},
		{"links", func(c *FetcherConfig) { c.MaxLinks = 19 }, ErrTooLarge},
		{"bytes", func(c *FetcherConfig) { c.MaxBytes = 20 << 10 }, ErrTooLarge},
		{"just enough", func(c *FetcherConfig) { c.MaxBlocks, c.MaxLinks, c.MaxBytes = 21, 20, im.Size }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fastConfig()
			tt.set(&cfg)
			q := newPipe(t)
			if _, err := Import(ctx, q.srcDAG(), file, ImportOptions{ChunkSize: 1 << 10}); err != nil {
				t.Fatal(err)
			}
			_, err := NewFetcher(q.net, q.dst.Blocks, q.dst.Datastore, cfg).Fetch(ctx, im.CID, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v; want %v", err, tt.want)
			}
		})
	}
}

// TestIdentityAndTwoCodecs: an identity-CID entry is followed but not
// stored or counted; the same bytes linked as raw and as dag-pb are one
// block, fetched under both codecs.
func TestIdentityAndTwoCodecs(t *testing.T) {
	ctx := context.Background()
	p := newPipe(t)
	inner := merkledag.NodeWithData([]byte("inner"))
	leaf := blocks.NewBlock([]byte("leaf"))
	_ = inner.AddRawLink("leaf", &ipld.Link{Cid: cid.NewCidV1(cid.Raw, leaf.Cid().Hash())})
	innerRaw := cid.NewCidV1(cid.Raw, inner.Cid().Hash()) // same bytes, read as raw
	ident := identityCID(t, cid.Raw, []byte("tiny"))
	root := merkledag.NodeWithData(nil)
	_ = root.AddRawLink("a", &ipld.Link{Cid: innerRaw})
	_ = root.AddRawLink("b", &ipld.Link{Cid: inner.Cid()})
	_ = root.AddRawLink("c", &ipld.Link{Cid: ident})
	for _, b := range []blocks.Block{root, inner, leaf} {
		if err := p.src.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	f := NewFetcher(p.net, p.dst.Blocks, p.dst.Datastore, fastConfig())
	st, err := f.Fetch(ctx, root.Cid(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{Blocks: 3, Bytes: int64(len(root.RawData()) + len(inner.RawData()) + len(leaf.RawData()))}
	if st != want {
		t.Errorf("Fetch = %+v; want %+v", st, want)
	}
	if !present(t, p.dst.Blocks, string(leaf.Cid().Hash())) {
		t.Error("leaf linked only through the dag-pb reading was not fetched")
	}
	if _, err := f.Release(ctx, root.Cid()); err != nil {
		t.Fatal(err)
	}
	if u, _ := f.Usage(ctx); u != (Stat{}) {
		t.Errorf("Usage = %+v after release", u)
	}
}

// TestReleaseUnfinishedFetch: a Fetch cancelled half-way leaves claimed
// blocks and no record; Release walks what is there and deletes them.
func TestReleaseUnfinishedFetch(t *testing.T) {
	ctx := context.Background()
	p := newPipe(t)
	pin, head, _ := foreignBlocks(t, p)
	file := filepath.Join(t.TempDir(), "big.bin")
	writeRandFile(t, file, 8, 400<<10)
	im := importOne(t, p.srcDAG(), file, 4<<10) // 100 leaves
	f := NewFetcher(p.net, p.dst.Blocks, p.dst.Datastore, fastConfig())
	if _, err := f.Fetch(ctx, pin, nil); err != nil { // an unrelated kept pin
		t.Fatal(err)
	}
	before, _ := f.Usage(ctx)
	cctx, cancel := context.WithCancel(ctx)
	_, err := f.Fetch(cctx, im.CID, func(s Stat) {
		if s.Blocks >= 40 {
			cancel()
		}
	})
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	all := dagBlocks(t, p.srcDAG(), im.CID)
	var have int
	for k := range all {
		if present(t, p.dst.Blocks, k) {
			have++
		}
	}
	if have < 40 || have == len(all) {
		t.Fatalf("%d of %d blocks present after cancelling; want about half", have, len(all))
	}
	freed, err := f.Release(ctx, im.CID)
	if err != nil {
		t.Fatal(err)
	}
	for k := range all {
		if present(t, p.dst.Blocks, k) {
			t.Errorf("block %x of the abandoned pin still present", k)
		}
	}
	if freed <= 0 {
		t.Errorf("freed %d", freed)
	}
	if u, _ := f.Usage(ctx); u != before {
		t.Errorf("Usage %+v; want %+v (the other pin)", u, before)
	}
	if !present(t, p.dst.Blocks, string(head.Cid().Hash())) {
		t.Error("head block deleted")
	}
	if k := keysUnder(t, p.dst.Datastore, nsRoot+"/gc/"); len(k) != 0 {
		t.Errorf("%d queued deletions left", len(k))
	}
}

// TestConcurrentFetchAndRelease runs Fetch of one pin and Release of
// another that shares blocks with it, over and over: the fetched pin must
// always end complete.
func TestConcurrentFetchAndRelease(t *testing.T) {
	ctx := context.Background()
	p := newPipe(t)
	a, b := sharedPins(t, p)
	f := NewFetcher(p.net, p.dst.Blocks, p.dst.Datastore, fastConfig())
	blocksB := dagBlocks(t, p.srcDAG(), b.CID)
	for i := range 8 {
		if _, err := f.Fetch(ctx, a.CID, nil); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var errF, errR error
		wg.Go(func() { _, errF = f.Fetch(ctx, b.CID, nil) })
		wg.Go(func() { _, errR = f.Release(ctx, a.CID) })
		wg.Wait()
		if errF != nil || errR != nil {
			t.Fatalf("round %d: Fetch %v, Release %v", i, errF, errR)
		}
		for k := range blocksB {
			if !present(t, p.dst.Blocks, k) {
				t.Fatalf("round %d: block %x of kept pin b missing", i, k)
			}
		}
		if _, err := f.Release(ctx, b.CID); err != nil {
			t.Fatal(err)
		}
		if u, _ := f.Usage(ctx); u != (Stat{}) {
			t.Fatalf("round %d: Usage %+v after releasing everything", i, u)
		}
	}
	// Fetch and Release of the same root at once: either order is fine,
	// but the end state must be consistent.
	blocksA := dagBlocks(t, p.srcDAG(), a.CID)
	for i := range 8 {
		var wg sync.WaitGroup
		var errF, errR error
		wg.Go(func() { _, errF = f.Fetch(ctx, a.CID, nil) })
		wg.Go(func() { _, errR = f.Release(ctx, a.CID) })
		wg.Wait()
		if errF != nil || errR != nil {
			t.Fatalf("same root, round %d: Fetch %v, Release %v", i, errF, errR)
		}
		kept, _, _ := f.Kept(ctx, a.CID)
		want := Stat{}
		if kept {
			want = sumSizes(blocksA)
			for k := range blocksA {
				if !present(t, p.dst.Blocks, k) {
					t.Fatalf("same root, round %d: kept but block %x missing", i, k)
				}
			}
		}
		if u, _ := f.Usage(ctx); u != want {
			t.Fatalf("same root, round %d: kept %v, Usage %+v; want %+v", i, kept, u, want)
		}
		if _, err := f.Release(ctx, a.CID); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFetcherConfig(t *testing.T) {
	if err := DefaultFetcherConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		set   func(*FetcherConfig)
		field string
	}{
		{"concurrency", func(c *FetcherConfig) { c.Concurrency = -1 }, "content.concurrency"},
		{"max blocks", func(c *FetcherConfig) { c.MaxBlocks = -1 }, "content.max_blocks"},
		{"max links", func(c *FetcherConfig) { c.MaxLinks = -1 }, "content.max_links"},
		{"max bytes", func(c *FetcherConfig) { c.MaxBytes = -1 }, "content.max_bytes"},
		{"attempts", func(c *FetcherConfig) { c.Attempts = -1 }, "content.attempts"},
		{"timeout", func(c *FetcherConfig) { c.AttemptTimeout = -1 }, "content.attempt_timeout"},
		{"backoff order", func(c *FetcherConfig) { c.BackoffMin, c.BackoffMax = 10, 5 }, "content.backoff_min"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultFetcherConfig()
			tt.set(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate = %v; want ErrInvalid naming %s", err, tt.field)
			}
		})
	}
	if got := (FetcherConfig{Concurrency: 3}).withDefaults(); got.Concurrency != 3 || got.Attempts != 5 || got.MaxBlocks != 10_000_000 {
		t.Errorf("withDefaults = %+v", got)
	}
	c := DefaultFetcherConfig()
	var got []string
	for i := 1; i <= 7; i++ {
		got = append(got, c.backoff(i).String())
	}
	if s := strings.Join(got, " "); s != "1s 2s 4s 8s 16s 30s 30s" {
		t.Errorf("backoff = %s", s)
	}
}

// stuckFirstSession is a DAG service whose first session never answers
// (as a bitswap session waiting on a peer that claimed a block and never
// sends it); later sessions serve normally.
type stuckFirstSession struct {
	ipld.DAGService
	sessions atomic.Int64
}

func (d *stuckFirstSession) Session(ctx context.Context) ipld.NodeGetter {
	if d.sessions.Add(1) == 1 {
		return stuckGetter{d.DAGService}
	}
	return d.DAGService
}

type stuckGetter struct{ ipld.DAGService }

func (stuckGetter) Get(ctx context.Context, _ cid.Cid) (ipld.Node, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestFetchRenewsStalledSession: a fetch whose session answers nothing is
// renewed after StallTimeout and completes in the new session, within
// the same attempt (long before AttemptTimeout).
func TestFetchRenewsStalledSession(t *testing.T) {
	ctx := context.Background()
	p := newPipe(t)
	file := filepath.Join(t.TempDir(), "f.bin")
	writeRandFile(t, file, 3, 64<<10)
	im := importOne(t, p.srcDAG(), file, 4<<10)
	cfg := fastConfig()
	cfg.StallTimeout = 200 * time.Millisecond
	cfg.Attempts = 1
	d := &stuckFirstSession{DAGService: p.net}
	f := NewFetcher(d, p.dst.Blocks, p.dst.Datastore, cfg)
	began := time.Now()
	st, err := f.Fetch(ctx, im.CID, nil)
	took := time.Since(began)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if st.Blocks != im.Blocks {
		t.Errorf("Stat %+v; want %d blocks", st, im.Blocks)
	}
	if got := f.Renewals(); got != 1 {
		t.Errorf("Renewals = %d; want 1", got)
	}
	if n := d.sessions.Load(); n != 2 {
		t.Errorf("%d sessions opened; want 2", n)
	}
	if took >= cfg.AttemptTimeout {
		t.Errorf("Fetch took %s: the attempt timed out instead of the session being renewed", took)
	}
}
