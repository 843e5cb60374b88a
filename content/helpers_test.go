package content

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/files"
	"github.com/ipfs/boxo/ipld/merkledag"
	unixfile "github.com/ipfs/boxo/ipld/unixfs/file"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	ipld "github.com/ipfs/go-ipld-format"
	"go.uber.org/goleak"

	"github.com/pinfold/pinfold/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// openStore opens a badger4 store in a fresh temporary folder, closed at
// the end of the test.
func openStore(t testing.TB) *store.Store {
	t.Helper()
	return openStoreAt(t, t.TempDir())
}

func openStoreAt(t testing.TB, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// offlineDAG is a DAG service over bs that never asks anyone.
func offlineDAG(bs blockstore.Blockstore) ipld.DAGService {
	return merkledag.NewDAGService(blockservice.New(bs, nil))
}

// countingExchange serves blocks from a source block store like a peer
// would, counts what it is asked for, and fails the next `fail` requests.
type countingExchange struct {
	exchange.Interface
	asked atomic.Int64
	fail  atomic.Int64

	mu     sync.Mutex
	askedM map[string]int
}

func newCountingExchange(src blockstore.Blockstore) *countingExchange {
	return &countingExchange{Interface: offline.Exchange(src), askedM: make(map[string]int)}
}

func (e *countingExchange) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	e.asked.Add(1)
	e.mu.Lock()
	e.askedM[string(c.Hash())]++
	e.mu.Unlock()
	if e.fail.Add(-1) >= 0 {
		return nil, errors.New("injected transient failure")
	}
	return e.Interface.GetBlock(ctx, c)
}

// pipe is a source block store and a destination store, joined by an
// exchange: what the Fetcher on dst fetches comes from src.
type pipe struct {
	src   blockstore.Blockstore
	srcDS ds.Batching
	dst   *store.Store
	ex    *countingExchange
	net   ipld.DAGService
}

func newPipe(t testing.TB) *pipe {
	t.Helper()
	srcStore := openStore(t)
	dst := openStore(t)
	ex := newCountingExchange(srcStore.Blocks)
	return &pipe{
		src: srcStore.Blocks, srcDS: srcStore.Datastore, dst: dst, ex: ex,
		net: merkledag.NewDAGService(blockservice.New(dst.Blocks, ex)),
	}
}

// srcDAG is the source's DAG service, for importing.
func (p *pipe) srcDAG() ipld.DAGService { return offlineDAG(p.src) }

// fastConfig retries quickly.
func fastConfig() FetcherConfig {
	c := DefaultFetcherConfig()
	c.Concurrency = 4
	c.AttemptTimeout = 5e9
	c.BackoffMin = 1e6
	c.BackoffMax = 4e6
	return c
}

// writeRandFile writes size deterministic bytes (from seed) at path.
func writeRandFile(t testing.TB, path string, seed uint64, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	_, _ = rand.NewChaCha8(s).Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// importOne imports path into dag as one pin.
func importOne(t testing.TB, dag ipld.DAGService, path string, chunk int) Imported {
	t.Helper()
	im, err := Import(context.Background(), dag, path, ImportOptions{ChunkSize: chunk})
	if err != nil {
		t.Fatal(err)
	}
	if len(im) != 1 {
		t.Fatalf("Import(%s) = %d pins; want 1", path, len(im))
	}
	return im[0]
}

// dagBlocks walks root in an offline DAG and returns its distinct
// non-identity multihashes with sizes.
func dagBlocks(t testing.TB, dag ipld.DAGService, root cid.Cid) map[string]int64 {
	t.Helper()
	lim := DefaultFetcherConfig().limits()
	w := newWalker(lim, func(ctx context.Context, c cid.Cid) (int64, []*ipld.Link, error) {
		nd, err := dag.Get(ctx, c)
		if err != nil {
			return 0, nil, err
		}
		return nodeInfo(c, nd)
	}, nil, nil)
	_, list, err := w.run(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int64, len(list))
	for _, e := range list {
		out[e.mh] = e.size
	}
	return out
}

// treeDigests reads every file under root (a UnixFS DAG in dag) and returns
// relative path -> sha256 of its bytes; folders map to "dir",
// symlinks to "-> target".
func treeDigests(t testing.TB, dag ipld.DAGService, root cid.Cid) map[string]string {
	t.Helper()
	ctx := context.Background()
	nd, err := dag.Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	f, err := unixfile.NewUnixfsFile(ctx, dag, nd)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	err = files.Walk(f, func(p string, n files.Node) error {
		switch n := n.(type) {
		case files.Directory:
			out[p] = "dir"
		case *files.Symlink:
			out[p] = "-> " + n.Target
		case files.File:
			h := sha256.New()
			if _, err := io.Copy(h, n); err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			out[p] = fmt.Sprintf("%x", h.Sum(nil))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// diskDigests is treeDigests for a folder (or file) on disk.
func diskDigests(t testing.TB, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(path, p)
		if rel == "." {
			rel = ""
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "-> " + target
		case d.IsDir():
			out[rel] = "dir"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("%x", sha256.Sum256(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareDigests(t testing.TB, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d entries read back; want %d", len(got), len(want))
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	bad := 0
	for _, k := range keys {
		if got[k] != want[k] {
			bad++
			if bad <= 5 {
				t.Errorf("%q: read back %q; want %q", k, got[k], want[k])
			}
		}
	}
}

// keysUnder lists datastore keys under prefix.
func keysUnder(t testing.TB, d ds.Datastore, prefix string) []string {
	t.Helper()
	res, err := d.Query(context.Background(), query.Query{Prefix: prefix, KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	all, err := res.Rest()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(all))
	for i, e := range all {
		out[i] = e.Key
	}
	return out
}

// present reports whether the block with multihash k is in bs.
func present(t testing.TB, bs blockstore.Blockstore, k string) bool {
	t.Helper()
	ok, err := bs.Has(context.Background(), cid.NewCidV1(cid.Raw, []byte(k)))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// sumSizes adds up the sizes of a block set.
func sumSizes(m map[string]int64) Stat {
	var s Stat
	for _, n := range m {
		s.Blocks++
		s.Bytes += n
	}
	return s
}
