package curator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/crypto"
	mh "github.com/multiformats/go-multihash"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/content"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/store"
)

// source is a content node: a libp2p node on 127.0.0.1 with its own
// badger store, serving what it imported over bitswap.
type source struct {
	node  *p2p.Node
	store *store.Store
}

func newSource(t *testing.T) *source {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "source"))
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p2p.DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Blockstore = st.Blocks
	n, err := p2p.New(key, cfg, nil)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close source node: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close source store: %v", err)
		}
	})
	return &source{node: n, store: st}
}

// addr is the source's address for PinOptions.From.
func (s *source) addr() string {
	return s.node.Addrs()[0].String() + "/p2p/" + s.node.ID().String()
}

// importFile writes n random bytes to a file and imports it with 16 KiB
// leaves; it returns the root and the DAG's Stat as the source counts it.
func (s *source) importFile(t *testing.T, n int) (cid.Cid, content.Stat) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "file")
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	im, err := content.Import(ctx, s.node.DAGService(), path, content.ImportOptions{ChunkSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	st, err := content.DAGStat(ctx, s.node.DAGService(), im[0].CID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes != im[0].Size || st.Blocks != im[0].Blocks {
		t.Fatalf("DAGStat %+v disagrees with Import (%d bytes, %d blocks)", st, im[0].Size, im[0].Blocks)
	}
	return im[0].CID, st
}

// startDaemon runs a curator daemon on 127.0.0.1 and returns it with a
// client for its API; both stop at cleanup.
func startDaemon(t *testing.T) (*Daemon, *Client) {
	t.Helper()
	ctx := context.Background()
	cfg := configs.DefaultCurator()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.API = "127.0.0.1:0"
	home := Home{Dir: filepath.Join(t.TempDir(), "curator")}
	if _, err := home.Init(ctx, InitOptions{Name: "test", Config: cfg, Now: time.Now(), Rand: rand.Reader}); err != nil {
		t.Fatal(err)
	}
	return runDaemon(t, home)
}

// runDaemon opens and runs the daemon of an initialised home, returning it
// with a client for its API; both stop at cleanup.
func runDaemon(t *testing.T, home Home) (*Daemon, *Client) {
	t.Helper()
	ctx := context.Background()
	ready := make(chan string, 1)
	d, err := OpenDaemon(ctx, home, DaemonOptions{APIReady: func(a string) { ready <- a }})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }() // owned by the test: cleanup cancels and waits
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon run: %v", err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("daemon close: %v", err)
		}
	})
	select {
	case a := <-ready:
		return d, &Client{Base: "http://" + a, HTTP: testHTTPClient}
	case err := <-done:
		t.Fatalf("daemon stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("daemon API not ready after 30s")
	}
	return nil, nil
}

var testHTTPClient = &http.Client{}

// dagOffline reads the daemon's own block store, never the network.
func dagOffline(d *Daemon) ipld.DAGService {
	return merkledag.NewDAGService(blockservice.New(d.store.Blocks, nil))
}

// waitCheck polls c's size check until it has the wanted state.
func waitCheck(t *testing.T, d *Daemon, c cid.Cid, state string, within time.Duration) SizeCheck {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		sc, ok := d.SizeCheck(c)
		if ok && sc.State == state {
			return sc
		}
		if time.Now().After(deadline) {
			t.Fatalf("size check of %s is %+v (present %v) after %s, want %s", c, sc, ok, within, state)
		}
		<-tick.C
	}
}

// missingCID is a CID of random bytes: no peer has its block.
func missingCID(t *testing.T) cid.Cid {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	h, err := mh.Sum(b, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

func TestPinAddWalksSize(t *testing.T) {
	ctx := context.Background()
	src := newSource(t)
	d, cl := startDaemon(t)
	root, want := src.importFile(t, 300<<10) // 19 leaves of 16 KiB and a root
	other, otherWant := src.importFile(t, 40<<10)

	// No size: the daemon dials the provider, walks, pins the exact size.
	res, err := cl.AddPinsWith(ctx, []PinRequest{{CID: root.String(), Name: "walked"}}, PinOptions{From: []string{src.addr()}, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 || len(res.Walked) != 1 || res.Walked[0].Size != want.Bytes || res.Walked[0].Blocks != want.Blocks {
		t.Fatalf("add result %+v, want one pin walked at %+v", res, want)
	}
	pins := listPins(t, cl)
	if p := pins[root.String()]; p.Size != want.Bytes || p.SizeChecked != CheckOK {
		t.Fatalf("listed pin %+v, want size %d checked ok", p, want.Bytes)
	}
	// The curator kept the blocks: it serves the pin itself now.
	if st, err := content.DAGStat(ctx, dagOffline(d), root, 0); err != nil || st != want {
		t.Fatalf("curator's own store holds %+v (%v), want %+v", st, err, want)
	}
	// Adding it again is a no-op, not a second walk.
	if res, err := cl.AddPinsWith(ctx, []PinRequest{{CID: root.String()}}, PinOptions{}); err != nil || res.Present != 1 || len(res.Walked) != 0 {
		t.Fatalf("second add: %+v, %v", res, err)
	}

	// A given size is taken at once and checked in the background.
	res, err = cl.AddPinsWith(ctx, []PinRequest{{CID: other.String(), Size: otherWant.Bytes + 1}}, PinOptions{Check: true})
	if err != nil || res.Added != 1 || len(res.Walked) != 0 {
		t.Fatalf("add with size: %+v, %v", res, err)
	}
	sc := waitCheck(t, d, other, CheckMismatch, time.Minute)
	if sc.Walked != otherWant.Bytes || sc.Size != otherWant.Bytes+1 {
		t.Fatalf("mismatch %+v, want walked %d", sc, otherWant.Bytes)
	}
	pins = listPins(t, cl)
	if p := pins[other.String()]; p.Size != otherWant.Bytes+1 || p.SizeChecked != fmt.Sprintf("mismatch: walked %d", otherWant.Bytes) {
		t.Fatalf("listed pin %+v: the signed size must stay, the mismatch must show", p)
	}
	if st, err := cl.Status(ctx); err != nil || st.SizeChecks[CheckMismatch] != 1 || st.SizeChecks[CheckOK] != 1 {
		t.Fatalf("status size checks %v (%v)", st.SizeChecks, err)
	}

	// Removing the pin forgets its check; a correct size checks ok.
	if err := cl.RemovePin(ctx, other.String()); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.SizeCheck(other); ok {
		t.Fatal("check of a removed pin kept")
	}
	if _, err := cl.AddPinsWith(ctx, []PinRequest{{CID: other.String(), Size: otherWant.Bytes}}, PinOptions{Check: true}); err != nil {
		t.Fatal(err)
	}
	waitCheck(t, d, other, CheckOK, time.Minute)
}

func TestPinAddWalkErrors(t *testing.T) {
	ctx := context.Background()
	src := newSource(t)
	d, cl := startDaemon(t)
	root, want := src.importFile(t, 200<<10) // 13 leaves and a root

	// Nobody has the CID: a clear error within the timeout.
	missing := missingCID(t)
	began := time.Now()
	_, err := d.AddPinsWith(ctx, []PinRequest{{CID: missing.String()}}, PinOptions{Timeout: time.Second})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "walked 0 blocks, 0 bytes") {
		t.Fatalf("missing CID: %v", err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("missing CID failed after %s, timeout 1s", took)
	}
	// Over HTTP: the same words, 504.
	_, err = cl.AddPinsWith(ctx, []PinRequest{{CID: missing.String()}}, PinOptions{Timeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "504") || !strings.Contains(err.Error(), "content unreachable") {
		t.Fatalf("missing CID over HTTP: %v", err)
	}
	if n := d.Pins().Stats().Pins; n != 0 {
		t.Fatalf("%d pins after failed adds", n)
	}

	// The source lacks one leaf: the walk times out saying how far it got.
	nd, err := src.node.DAGService().Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.store.Blocks.DeleteBlock(ctx, nd.Links()[len(nd.Links())-1].Cid); err != nil {
		t.Fatal(err)
	}
	_, err = d.AddPinsWith(ctx, []PinRequest{{CID: root.String()}}, PinOptions{From: []string{src.addr()}, Timeout: 2 * time.Second})
	if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "walked 0 blocks") {
		t.Fatalf("DAG missing a leaf: %v", err)
	}
	t.Logf("DAG of %d blocks missing a leaf: %v", want.Blocks, err)

	// Too many blocks.
	_, err = d.AddPinsWith(ctx, []PinRequest{{CID: root.String()}}, PinOptions{From: []string{src.addr()}, Timeout: time.Minute, MaxBlocks: 3})
	if !errors.Is(err, content.ErrTooLarge) {
		t.Fatalf("DAG over max blocks: %v", err)
	}

	// A block that does not decode fails the walk at once, naming it.
	garbage := []byte("not a dag-pb node \xff\xff\xff")
	h, err := mh.Sum(garbage, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	bad := cid.NewCidV1(cid.DagProtobuf, h)
	blk, err := blocks.NewBlockWithCid(garbage, bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.store.Blocks.Put(ctx, blk); err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	_, err = d.AddPinsWith(ctx, []PinRequest{{CID: bad.String()}}, PinOptions{From: []string{src.addr()}, Timeout: time.Minute})
	if !errors.Is(err, content.ErrMalformed) || !strings.Contains(err.Error(), bad.String()) || time.Since(began) > 30*time.Second {
		t.Fatalf("malformed block: %v after %s", err, time.Since(began))
	}
	t.Logf("malformed block: %v", err)

	// A provider that does not answer is named.
	dead := "/ip4/127.0.0.1/tcp/1/p2p/" + src.node.ID().String()
	if _, err := d.AddPinsWith(ctx, []PinRequest{{CID: missing.String()}}, PinOptions{From: []string{dead}, Timeout: time.Second}); err == nil || !strings.Contains(err.Error(), "provider") {
		t.Fatalf("dead provider: %v", err)
	}
	// A bad --from is refused before anything.
	if _, err := d.AddPinsWith(ctx, []PinRequest{{CID: missing.String()}}, PinOptions{From: []string{"/ip4/127.0.0.1/tcp/1"}}); err == nil || !strings.Contains(err.Error(), "/p2p/") {
		t.Fatalf("from without a peer ID: %v", err)
	}

	// A background check of content nobody serves ends unreachable.
	if _, err := d.AddPinsWith(ctx, []PinRequest{{CID: missing.String(), Size: 100}}, PinOptions{Check: true, Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	sc := waitCheck(t, d, missing, CheckUnreachable, 30*time.Second)
	if !strings.Contains(sc.Error, "content unreachable") {
		t.Fatalf("unreachable check: %+v", sc)
	}
}

func TestSizeChecksReload(t *testing.T) {
	ctx := context.Background()
	store := dssync.MutexWrap(ds.NewMapDatastore())
	now := func() time.Time { return time.Unix(1_700_000_000, 0) }
	s, err := openSizeChecks(ctx, store, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := missingCID(t), missingCID(t), missingCID(t)
	opt := PinOptions{From: []string{"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGRUVh4G7M6ekLvkK2onxYdj4hJSD9oXbe8GJ97dFVpPk"}, Timeout: time.Minute}
	if err := s.enqueue(ctx, a, 10, opt); err != nil {
		t.Fatal(err)
	}
	if err := s.put(ctx, b, SizeCheck{State: CheckOK, Size: 5, Walked: 5}); err != nil {
		t.Fatal(err)
	}
	if err := s.put(ctx, c, SizeCheck{State: CheckUnreachable, Size: 7}); err != nil {
		t.Fatal(err)
	}
	s2, err := openSizeChecks(ctx, store, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[cid.Cid]bool{}
	for {
		k, sc, ok := s2.next()
		if !ok {
			break
		}
		got[k] = true
		if k == a && !reflect.DeepEqual(sc.options(), opt) {
			t.Fatalf("reloaded options %+v, want %+v", sc.options(), opt)
		}
	}
	if !reflect.DeepEqual(got, map[cid.Cid]bool{a: true, c: true}) {
		t.Fatalf("requeued %v, want the pending and the unreachable check", got)
	}
	if err := s2.forget(ctx, a); err != nil {
		t.Fatal(err)
	}
	if has, err := store.Has(ctx, checkKey(a)); err != nil || has {
		t.Fatalf("forgotten check still stored: %v %v", has, err)
	}
}

func TestPinOptionsQuery(t *testing.T) {
	ma := "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGRUVh4G7M6ekLvkK2onxYdj4hJSD9oXbe8GJ97dFVpPk"
	for _, tc := range []struct {
		name  string
		query string
		want  PinOptions
		err   string
	}{
		{"empty", "", PinOptions{}, ""},
		{"all", "from=" + url.QueryEscape(ma) + "&from=" + url.QueryEscape(ma) + "&timeout=90s&max_blocks=7&check=1",
			PinOptions{From: []string{ma, ma}, Timeout: 90 * time.Second, MaxBlocks: 7, Check: true}, ""},
		{"check off", "check=0", PinOptions{}, ""},
		{"bad check", "check=yes", PinOptions{}, "check"},
		{"bad timeout", "timeout=soon", PinOptions{}, "timeout"},
		{"negative timeout", "timeout=-1s", PinOptions{}, "timeout"},
		{"huge timeout", "timeout=25h", PinOptions{}, "timeout"},
		{"bad max blocks", "max_blocks=-1", PinOptions{}, "max_blocks"},
		{"from without peer", "from=/ip4/127.0.0.1/tcp/1", PinOptions{}, "/p2p/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pinOptionsFromQuery(q)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one naming %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
			// What query writes reads back the same.
			back, err := url.ParseQuery(strings.TrimPrefix(got.query(), "?"))
			if err != nil {
				t.Fatal(err)
			}
			if again, err := pinOptionsFromQuery(back); err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

func FuzzPinOptionsQuery(f *testing.F) {
	f.Add("from=/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGRUVh4G7M6ekLvkK2onxYdj4hJSD9oXbe8GJ97dFVpPk&timeout=1m&check=1")
	f.Add("max_blocks=99999999999999999999&timeout=1h")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		o, err := pinOptionsFromQuery(q)
		if err != nil {
			return
		}
		if o.Timeout < 0 || o.MaxBlocks < 0 {
			t.Fatalf("accepted %+v", o)
		}
		back, err := url.ParseQuery(strings.TrimPrefix(o.query(), "?"))
		if err != nil {
			t.Fatal(err)
		}
		again, err := pinOptionsFromQuery(back)
		if err != nil || again.Timeout != o.Timeout || again.MaxBlocks != o.MaxBlocks || again.Check != o.Check || len(again.From) != len(o.From) {
			t.Fatalf("round trip of %+v: %+v, %v", o, again, err)
		}
	})
}

func listPins(t *testing.T, cl *Client) map[string]PinJSON {
	t.Helper()
	out := map[string]PinJSON{}
	if err := cl.ListPins(context.Background(), ListOptions{}, func(p PinJSON) error { out[p.CID] = p; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}
