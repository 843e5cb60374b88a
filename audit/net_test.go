package audit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/store"
)

const testClusterID = "audit-test"

func nodeKey(t testing.TB, seed uint64) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(newSeeded(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newNode starts a real pinfold node on 127.0.0.1 over bs.
func newNode(t testing.TB, seed uint64, bs blockstore.Blockstore) *p2p.Node {
	t.Helper()
	cfg := p2p.DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Blockstore = bs
	cfg.Metrics = prometheus.NewRegistry()
	n, err := p2p.New(nodeKey(t, seed), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func connect(t testing.TB, a, b *p2p.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// e2e is a holder on a badger4 store with one file pinned, an auditor, and
// the audit protocol between them.
type e2e struct {
	holder, auditor *p2p.Node
	st              *store.Store
	server          *Server
	client          *Client
	pins            []PinRef
	leaves          []cid.Cid
}

func newE2E(t *testing.T, blocks func(Blocks) Blocks, cfg Config) *e2e {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	root := fileDAG(t, st.Blocks, 30, 400<<10, 2<<10, 32) // 200 leaves of 2 KiB
	size, all := dagSize(t, st.Blocks, root.Cid())
	e := &e2e{st: st, pins: []PinRef{{root.Cid(), size}}}
	for _, c := range all {
		if c.Prefix().Codec == codecRaw {
			e.leaves = append(e.leaves, c)
		}
	}
	e.holder = newNode(t, 1, st.Blocks)
	e.auditor = newNode(t, 2, memBlocks())
	connect(t, e.auditor, e.holder)
	var bs Blocks = st.Blocks
	if blocks != nil {
		bs = blocks(bs)
	}
	auditor := e.auditor.ID()
	e.server, err = Serve(e.holder.Host(), testClusterID, testCluster(t), bs, func(p peer.ID) bool { return p == auditor }, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.server.Close() })
	if e.client, err = NewClient(e.auditor.Host(), testClusterID, cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

// audit runs one round: challenge, answer over the network, verify.
func (e *e2e) audit(t *testing.T, seed uint64) (int, error) {
	t.Helper()
	ch := challengeFor(t, e.pins, DefaultSamples, seed)
	resp, err := e.client.Challenge(context.Background(), e.holder.ID(), ch)
	if err != nil {
		return 0, err
	}
	return Verify(ch, resp)
}

func TestE2EHonestAndDeleting(t *testing.T) {
	t.Parallel()
	e := newE2E(t, nil, DefaultConfig())
	for seed := uint64(0); seed < 5; seed++ {
		if n, err := e.audit(t, seed); err != nil || n != DefaultSamples {
			t.Fatalf("honest holder, seed %d: %d, %v", seed, n, err)
		}
	}
	// Delete 10% of the leaves from the badger store.
	const seed = 7
	rng := rand.New(rand.NewPCG(seed, 0))
	victims := rng.Perm(len(e.leaves))[:len(e.leaves)/10]
	for _, i := range victims {
		if err := e.st.Blocks.DeleteBlock(context.Background(), e.leaves[i]); err != nil {
			t.Fatal(err)
		}
	}
	limit := RoundsFor(0.1, DefaultSamples, 0.99)
	t.Logf("seed %d: deleted %d of %d leaves; predicted: caught within %d rounds of %d paths with p >= 0.99", seed, len(victims), len(e.leaves), limit, DefaultSamples)
	for round := 1; round <= limit; round++ {
		_, err := e.audit(t, seed*1000+uint64(round))
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrBlockMissing) || !Failed(err) {
			t.Fatalf("round %d: %v, want ErrBlockMissing", round, err)
		}
		t.Logf("caught in round %d: %v", round, err)
		return
	}
	t.Fatalf("not caught within %d rounds", limit)
}

// gate blocks every Get until released, and says when one is waiting.
type gate struct {
	Blocks
	entered chan struct{}
	release chan struct{}
}

func (g gate) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Blocks.Get(ctx, c)
}

func TestE2ERefusals(t *testing.T) {
	t.Parallel()
	g := gate{entered: make(chan struct{}, 1), release: make(chan struct{})}
	e := newE2E(t, func(b Blocks) Blocks { g.Blocks = b; return g }, DefaultConfig())

	// One challenge at a time per auditor: the second is told busy.
	first := make(chan error, 1)
	go func() { _, err := e.audit(t, 1); first <- err }()
	<-g.entered
	if _, err := e.audit(t, 2); !errors.Is(err, ErrBusy) || Failed(err) {
		t.Fatalf("second challenge while one runs: %v, want ErrBusy", err)
	}
	close(g.release)
	if err := <-first; err != nil {
		t.Fatalf("first challenge: %v", err)
	}

	// A peer that is not allowed (not a curator) is refused.
	other := newNode(t, 3, memBlocks())
	connect(t, other, e.holder)
	c, _ := NewClient(other.Host(), testClusterID, DefaultConfig())
	ch := challengeFor(t, e.pins, 2, 3)
	if _, err := c.Challenge(context.Background(), e.holder.ID(), ch); !errors.Is(err, ErrRefused) {
		t.Fatalf("challenge from a peer that is not allowed: %v, want ErrRefused", err)
	}
	// A challenge for another cluster is refused.
	ch.Cluster = e.auditor.ID()
	if _, err := e.client.Challenge(context.Background(), e.holder.ID(), ch); !errors.Is(err, ErrRefused) {
		t.Fatalf("challenge for another cluster: %v, want ErrRefused", err)
	}
	// After Close the protocol is gone (and Close is idempotent).
	_ = e.server.Close()
	_ = e.server.Close()
	if _, err := e.audit(t, 4); err == nil || Failed(err) {
		t.Fatalf("challenge after Close: %v, want a network error", err)
	}
}

// rogue serves the audit protocol on a fresh node with handler.
func rogue(t *testing.T, e *e2e, seed uint64, handler network.StreamHandler) *p2p.Node {
	t.Helper()
	n := newNode(t, seed, memBlocks())
	n.Host().SetStreamHandler(ProtocolID(testClusterID), handler)
	connect(t, e.auditor, n)
	return n
}

func TestE2EGarbageAndSilence(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Timeout = 500 * time.Millisecond
	e := newE2E(t, nil, cfg)
	ch := challengeFor(t, e.pins, 2, 5)
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	for i, tc := range []struct {
		name    string
		handler network.StreamHandler
		want    error
		failed  bool
	}{
		{"garbage", func(st network.Stream) {
			_, _ = io.Copy(io.Discard, st)
			_, _ = st.Write(bytes.Repeat([]byte("garbage!"), 100))
			_ = st.Close()
		}, ErrMalformed, true},
		{"huge block", func(st network.Stream) {
			_, _ = io.Copy(io.Discard, st)
			_, _ = st.Write([]byte{statusAnswer, pathBlocks, 1, 0x80, 0x80, 0x80, 0x08}) // a 16 MiB block
			_ = st.Close()
		}, ErrTooLarge, true},
		{"wrong blocks", func(st network.Stream) {
			_, _ = io.Copy(io.Discard, st)
			_ = WriteResponse(st, Response{Paths: []Path{{Blocks: [][]byte{[]byte("a")}}, {Blocks: [][]byte{[]byte("b")}}}})
			_ = st.Close()
		}, ErrWrongBlock, true},
		{"silence", func(st network.Stream) {
			_, _ = io.Copy(io.Discard, st)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
			}
			_ = st.Reset()
		}, ErrTimeout, false},
	} {
		n := rogue(t, e, 10+uint64(i), tc.handler)
		start := time.Now()
		resp, err := e.client.Challenge(context.Background(), n.ID(), ch)
		if err == nil {
			_, err = Verify(ch, resp)
		}
		if !errors.Is(err, tc.want) || Failed(err) != tc.failed {
			t.Fatalf("%s: %v, want %v (failed %v)", tc.name, err, tc.want, tc.failed)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("%s: took %s, deadline %s", tc.name, took, cfg.Timeout)
		}
		t.Logf("%s: %v", tc.name, err)
	}
}
