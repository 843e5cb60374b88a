package p2p

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

// leakOptions lists goroutines goleak may ignore. None so far: after
// Close, libp2p, gossipsub and bitswap leave nothing running.
var leakOptions []goleak.Option

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leakOptions...)
}

// waitTimeout bounds every wait on a condition; generous for -race on a
// loaded two-core machine.
const waitTimeout = 30 * time.Second

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, waitTimeout, what, cond)
}

// waitWithin is waitFor with its own deadline.
func waitWithin(t testing.TB, waitTimeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
		}
		<-tick.C
	}
}

// testKey derives a deterministic identity from seed.
func testKey(t testing.TB, seed uint64) crypto.PrivKey {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b9))
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testConfig listens on 127.0.0.1 only, with fast reconnects, an
// in-memory blockstore, its own metrics registry and a peers file in dir.
func testConfig(dir string, bootstrap ...*Node) Config {
	cfg := DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	cfg.ReconnectMin = 50 * time.Millisecond
	cfg.ReconnectMax = time.Second
	cfg.DialTimeout = 5 * time.Second
	cfg.PeersFile = filepath.Join(dir, "peers.json")
	cfg.Blockstore = blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
	cfg.Metrics = prometheus.NewRegistry()
	for _, b := range bootstrap {
		for _, a := range b.Addrs() {
			cfg.Bootstrap = append(cfg.Bootstrap, a.String())
		}
	}
	return cfg
}

// running is a Node with its Run goroutine.
type running struct {
	*Node
	cancel   context.CancelFunc
	runErr   chan error
	stopOnce sync.Once
}

// start builds a node and runs it; stop (also registered as cleanup)
// cancels Run, closes the node and checks both ended cleanly.
func start(t testing.TB, name string, key crypto.PrivKey, cfg Config) *running {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: testLogLevel})).With("node", name)
	n, err := New(key, cfg, log)
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Node: n, cancel: cancel, runErr: make(chan error, 1)}
	go func() { r.runErr <- n.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	r.stopOnce.Do(func() {
		r.cancel()
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		// Close waited for Run; ErrClosed means Run had not started yet.
		if err := <-r.runErr; err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Run: %v", err)
		}
	})
}

// testWriter sends log lines to t.Log, so they show only on failure.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// accept is the validator of a node that publishes test messages: it
// takes anything, so invalid messages reach the others.
func accept(context.Context, *pubsub.Message) error { return nil }

// strict accepts messages starting with "ok" or "flood" or "marker".
func strict(_ context.Context, msg *pubsub.Message) error {
	for _, p := range []string{"ok", "flood", "marker"} {
		if bytes.HasPrefix(msg.Data, []byte(p)) {
			return nil
		}
	}
	return fmt.Errorf("payload %.8q: %w", msg.Data, errSentinel)
}

// next reads the next message of s within waitTimeout.
func next(t testing.TB, s *Subscription) *pubsub.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	m, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return m
}

func join(t testing.TB, n *running, name string, v Validator, opts ...TopicOption) (*Topic, *Subscription) {
	t.Helper()
	topic, err := n.JoinTopic(name, v, opts...)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := topic.Close(); err != nil {
			t.Errorf("close topic: %v", err)
		}
	})
	return topic, sub
}

// chain starts A, B (bootstrap A) and C (bootstrap B) and waits until
// B is connected to both.
func chain(t *testing.T) (a, b, c *running) {
	t.Helper()
	a = start(t, "A", testKey(t, 1), testConfig(t.TempDir()))
	b = start(t, "B", testKey(t, 2), testConfig(t.TempDir(), a.Node))
	c = start(t, "C", testKey(t, 3), testConfig(t.TempDir(), b.Node))
	waitFor(t, "A<-B<-C connected", func() bool {
		return b.ConnectedTo(a.ID()) && b.ConnectedTo(c.ID()) && c.ConnectedTo(b.ID()) && a.ConnectedTo(b.ID())
	})
	return a, b, c
}

// waitMesh waits until the chain's gossipsub meshes for topic are whole:
// A-B and B-C, seen from both ends (a message forwarded before that may
// never reach a late mesh member).
func waitMesh(t testing.TB, topic string, a, b, c *running) {
	t.Helper()
	waitFor(t, "the A-B-C mesh of "+topic, func() bool {
		mesh := func(n *running) []peer.ID { return n.mesh.list(topic) }
		return slices.Contains(mesh(a), b.ID()) && slices.Contains(mesh(c), b.ID()) &&
			slices.Contains(mesh(b), a.ID()) && slices.Contains(mesh(b), c.ID())
	})
}

func TestHostSetup(t *testing.T) {
	a := start(t, "A", testKey(t, 1), testConfig(t.TempDir()))
	for _, addr := range a.Addrs() {
		if err := checkTransportAddr(strings.Split(addr.String(), "/p2p/")[0]); err != nil {
			t.Errorf("address %s: %v", addr, err)
		}
		if !strings.HasPrefix(addr.String(), "/ip4/127.0.0.1/") {
			t.Errorf("address %s is not loopback", addr)
		}
	}
	if len(a.Addrs()) != 2 {
		t.Errorf("Addrs = %v, want one TCP and one QUIC", a.Addrs())
	}
	for _, p := range a.Host().Mux().Protocols() {
		for _, banned := range []string{"circuit", "dcutr", "autonat"} {
			if strings.Contains(string(p), banned) {
				t.Errorf("host serves %s; relay, hole punching and AutoNAT service must be off", p)
			}
		}
	}
	// go-libp2p metrics land in the registry passed in.
	families, err := a.cfg.Metrics.(*prometheus.Registry).Gather()
	if err != nil || !slices.ContainsFunc(families, func(f *dto.MetricFamily) bool { return strings.HasPrefix(f.GetName(), "libp2p_") }) {
		t.Errorf("no libp2p metrics in the registry passed in (err %v)", err)
	}
}

func TestTopics(t *testing.T) {
	a, b, c := chain(t)
	const name = "/pinfold/test/heads"
	ta, subA := join(t, a, name, accept)
	_, subB := join(t, b, name, strict, WithMaxSize(1024))
	_, subC := join(t, c, name, strict, WithMaxSize(1024))
	waitMesh(t, name, a, b, c)
	ctx := context.Background()

	// A valid message reaches everyone, A included.
	if err := ta.Publish(ctx, []byte("ok-1")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Subscription{subA, subB, subC} {
		if m := next(t, s); string(m.Data) != "ok-1" || m.GetFrom() != a.ID() {
			t.Fatalf("got %q from %s, want ok-1 from A", m.Data, m.GetFrom())
		}
	}

	// An invalid message is rejected by B, recorded with its reason, and
	// goes no further; so is one over B's size limit.
	if err := ta.Publish(ctx, []byte("bad-1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to reject bad-1", func() bool { return b.RejectionCounts()["trust: signature invalid"] == 1 })
	if err := ta.Publish(ctx, append([]byte("ok-big-"), make([]byte, 2000)...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to reject the oversized message", func() bool { return b.RejectionCounts()["p2p: message too large"] == 1 })
	if err := ta.Publish(ctx, []byte("ok-2")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Subscription{subB, subC} {
		if m := next(t, s); string(m.Data) != "ok-2" {
			t.Fatalf("got %.10q, want ok-2: the invalid and oversized messages must reach nobody", m.Data)
		}
	}
	rej := b.Rejections()
	if len(rej) != 2 || rej[0].Peer != a.ID() || rej[0].Author != a.ID() || rej[0].Topic != name ||
		!strings.Contains(rej[0].Reason, "bad-1") || rej[1].Label != "p2p: message too large" {
		t.Errorf("B.Rejections() = %+v", rej)
	}
	if got := c.RejectionCounts(); len(got) != 0 {
		t.Errorf("C rejected %v; nothing invalid should have reached it", got)
	}
	series := counterSeries(t, b.cfg.Metrics.(*prometheus.Registry))
	if series[name+"/trust: signature invalid"] != 1 || series[name+"/p2p: message too large"] != 1 {
		t.Errorf("B's prometheus counter = %v", series)
	}

	// Publishing over our own limit fails before anything is sent.
	if err := ta.Publish(ctx, make([]byte, a.cfg.MaxMessageSize)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Publish(oversized) = %v, want ErrTooLarge", err)
	}
}

func TestFloodIsRateLimited(t *testing.T) {
	a, b, c := chain(t)
	const (
		name   = "/pinfold/test/acks"
		flood  = 500
		perSec = 5
		burst  = 20
	)
	ta, _ := join(t, a, name, accept)
	_, subB := join(t, b, name, strict, WithRateLimit(perSec, burst))
	_, subC := join(t, c, name, strict, WithRateLimit(perSec, burst))
	waitMesh(t, name, a, b, c)

	began := time.Now()
	for i := range flood {
		if err := ta.Publish(context.Background(), fmt.Appendf(nil, "flood-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "B to rate-limit A", func() bool { return b.RejectionCounts()["p2p: peer rate limited"] > 0 })

	// Count what B and C delivered until a marker gets through; A sends a
	// marker each time the wait for one times out (B drops markers too
	// while A's bucket is empty).
	count := func(s *Subscription, who string) int {
		got, k := 0, 0
		deadline := time.Now().Add(waitTimeout)
		for {
			if err := ta.Publish(context.Background(), fmt.Appendf(nil, "marker-%s-%d", who, k)); err != nil {
				t.Fatal(err)
			}
			k++
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			for {
				m, err := s.Next(ctx)
				if err != nil {
					break
				}
				if bytes.HasPrefix(m.Data, []byte("flood-")) {
					got++
				} else if bytes.HasPrefix(m.Data, []byte("marker-")) {
					cancel()
					return got
				}
			}
			cancel()
			if time.Now().After(deadline) {
				t.Fatalf("%s: no marker within %s", who, waitTimeout)
			}
		}
	}
	gotB := count(subB, "B")
	gotC := count(subC, "C")
	elapsed := time.Since(began)
	limit := burst + int(perSec*elapsed.Seconds()) + 1
	t.Logf("flood of %d: B delivered %d, C delivered %d in %s (bucket allows %d); B dropped %d",
		flood, gotB, gotC, elapsed.Round(time.Millisecond), limit, b.RejectionCounts()["p2p: peer rate limited"])
	if gotB == 0 || gotB > limit {
		t.Errorf("B delivered %d flood messages, want 1..%d", gotB, limit)
	}
	if gotC > limit {
		t.Errorf("C delivered %d flood messages, want <= %d", gotC, limit)
	}
	// One coalesced entry for the flood (gossipsub may add its own, e.g.
	// a full validation queue, also blamed on A).
	rej := b.Rejections()
	i := slices.IndexFunc(rej, func(r Rejection) bool { return r.Label == "p2p: peer rate limited" })
	if i < 0 || rej[i].Peer != a.ID() || rej[i].Count < 2 {
		t.Errorf("B.Rejections() = %+v, want one coalesced rate-limit entry for A", rej)
	}
	for _, r := range rej {
		if r.Peer != a.ID() {
			t.Errorf("B blamed %s for %q; only A flooded", r.Peer, r.Label)
		}
	}
}

// TestStrictSigning: a peer whose gossipsub does not sign cannot get a
// message past the node, and the drop is recorded.
func TestStrictSigning(t *testing.T) {
	a := start(t, "A", testKey(t, 1), testConfig(t.TempDir()))
	const name = "/pinfold/test/offers"
	_, subA := join(t, a, name, accept)

	h, err := libp2p.New(libp2p.Identity(testKey(t, 9)), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(name)
	if err != nil {
		t.Fatal(err)
	}
	defer topic.Close()
	waitFor(t, "the unsigned peer to see A in the topic", func() bool { return len(topic.ListPeers()) == 1 })
	if err := topic.Publish(ctx, []byte("ok-unsigned")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A to drop the unsigned message", func() bool {
		return a.RejectionCounts()["pubsub: missing signature"] == 1
	})
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if m, err := subA.Next(short); err == nil {
		t.Errorf("A delivered %q from an unsigned peer", m.Data)
	}
}

func TestRestartFindsPeersWithoutBootstrap(t *testing.T) {
	_, b, c := chain(t)
	dirC := t.TempDir()
	keyC := testKey(t, 3)
	c.stop(t) // Run writes the peers file as it stops

	// The chain's C had its own folder; start a fresh C with B only in
	// its peers file: first with the bootstrap list, then without.
	cfg := testConfig(dirC, b.Node)
	c1 := start(t, "C1", keyC, cfg)
	waitFor(t, "C1 connected to B via bootstrap", func() bool { return c1.ConnectedTo(b.ID()) })
	waitFor(t, "C1 to remember B", func() bool {
		return slices.ContainsFunc(c1.Remembered(), func(ai peer.AddrInfo) bool { return ai.ID == b.ID() })
	})
	c1.stop(t)
	data, err := os.ReadFile(cfg.PeersFile)
	if err != nil || !bytes.Contains(data, []byte(b.ID().String())) {
		t.Fatalf("peers file after stop: %v\n%s", err, data)
	}

	cfg2 := testConfig(dirC) // no bootstrap
	c2 := start(t, "C2", keyC, cfg2)
	waitFor(t, "C2 to reconnect to B from the peers file alone", func() bool { return c2.ConnectedTo(b.ID()) })
	if ps := c2.Peers(); len(ps) == 0 || ps[0].Bootstrap {
		t.Errorf("C2.Peers() = %+v, want B, not marked bootstrap", ps)
	}
}

func TestBitswapFetchThroughDAGService(t *testing.T) {
	a, _, c := chain(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	node := merkledag.NewRawNode([]byte("a block that only A has"))
	if err := a.DAGService().Add(ctx, node); err != nil {
		t.Fatal(err)
	}
	if has, _ := c.cfg.Blockstore.Has(ctx, node.Cid()); has {
		t.Fatal("C has the block before fetching")
	}
	// Bitswap asks connected peers only: C connects to A first.
	if err := c.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	got, err := c.DAGService().Get(ctx, node.Cid())
	if err != nil {
		t.Fatalf("C fetching %s: %v", node.Cid(), err)
	}
	if !bytes.Equal(got.RawData(), node.RawData()) {
		t.Errorf("C got %q, want %q", got.RawData(), node.RawData())
	}
	if has, _ := c.cfg.Blockstore.Has(ctx, node.Cid()); !has {
		t.Error("C did not store the fetched block")
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	leaks := append(slices.Clone(leakOptions), goleak.IgnoreCurrent())
	a := start(t, "A", testKey(t, 1), testConfig(t.TempDir()))
	waitFor(t, "Run to start", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.running
	})
	if err := a.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	topic, sub := join(t, a, "/pinfold/test/close", accept)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
	if err := a.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
	if _, err := a.JoinTopic("/pinfold/test/other", accept); !errors.Is(err, ErrClosed) {
		t.Errorf("JoinTopic after Close = %v, want ErrClosed", err)
	}
	if _, err := sub.Next(context.Background()); err == nil {
		t.Error("Next after Close returned a message")
	}
	if err := topic.Close(); err != nil {
		t.Errorf("Topic.Close after Node.Close: %v", err)
	}
	a.stop(t) // checks that Run returned nil
	goleak.VerifyNone(t, leaks...)
}

func TestNewRejects(t *testing.T) {
	key := testKey(t, 1)
	cfg := testConfig(t.TempDir())
	noStore := cfg
	noStore.Blockstore = nil
	bad := cfg
	bad.ConnHigh = 1
	for name, tc := range map[string]struct {
		key crypto.PrivKey
		cfg Config
	}{"nil key": {nil, cfg}, "no blockstore": {key, noStore}, "invalid": {key, bad}} {
		if n, err := New(tc.key, tc.cfg, nil); err == nil {
			n.Close()
			t.Errorf("%s: New succeeded", name)
		}
	}
	// A corrupt peers file is a cache miss, not a failure.
	if err := os.WriteFile(cfg.PeersFile, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := New(key, cfg, nil)
	if err != nil {
		t.Fatalf("New with a corrupt peers file: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Error(err)
	}
}

var testLogLevel = func() slog.Level {
	if os.Getenv("P2P_TEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}()

func TestBootstrapPeerComesBack(t *testing.T) {
	// TCP only: the test is about redialling, and a QUIC connection whose
	// closing packet is lost ends only at QUIC's 30-s idle timeout, which
	// made "B notices A is gone" race the wait's deadline on a loaded CI.
	tcpOnly := func(cfg Config) Config {
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
		return cfg
	}
	dirA := t.TempDir()
	a := start(t, "A", testKey(t, 1), tcpOnly(testConfig(dirA)))
	b := start(t, "B", testKey(t, 2), tcpOnly(testConfig(t.TempDir(), a.Node)))
	waitFor(t, "B connected to A", func() bool { return b.ConnectedTo(a.ID()) })
	if ps := b.Peers(); len(ps) != 1 || ps[0].ID != a.ID() || !ps[0].Bootstrap || len(ps[0].Addrs) == 0 {
		t.Errorf("B.Peers() = %+v, want A marked bootstrap", ps)
	}

	// A goes away and comes back on the same addresses: B redials it.
	cfg := testConfig(dirA)
	cfg.Listen = nil
	for _, addr := range a.Host().Addrs() {
		cfg.Listen = append(cfg.Listen, addr.String())
	}
	a.stop(t)
	waitFor(t, "B to notice A is gone", func() bool { return !b.ConnectedTo(a.ID()) })
	a2 := start(t, "A2", testKey(t, 1), cfg)
	waitFor(t, "B to reconnect to A", func() bool { return b.ConnectedTo(a2.ID()) })
}

func TestBackoffBounds(t *testing.T) {
	n := &Node{cfg: DefaultConfig()}
	r := &runner{n: n}
	for _, tc := range []struct {
		name string
		t    target
		ceil time.Duration
	}{
		{"remembered", target{}, n.cfg.ReconnectMax},
		{"bootstrap", target{bootstrap: true}, n.cfg.KeepReconnectMax},
		{"member never reached", target{member: true}, n.cfg.ReconnectMax},
		{"member reached", target{member: true, reached: true}, n.cfg.KeepReconnectMax},
	} {
		for failures := range 40 {
			tc.t.failures = failures
			want := min(n.cfg.ReconnectMin<<min(failures, 20), tc.ceil)
			lo, hi := time.Duration(float64(want)*0.8), time.Duration(float64(want)*1.2)
			for range 20 {
				if d := r.backoff(&tc.t); d < lo || d > hi {
					t.Fatalf("%s: backoff after %d failures = %s, want %s..%s", tc.name, failures, d, lo, hi)
				}
			}
		}
	}
}

// TestDeafConnectionClosed: when gossipsub's stream to a peer fails to
// open (here: the peer did not speak gossipsub yet when it connected) and
// the peer later says it speaks gossipsub, the connection is closed so
// that it can be dialled again, instead of staying up with no pubsub.
func TestDeafConnectionClosed(t *testing.T) {
	old := deafAfter
	deafAfter = 200 * time.Millisecond
	t.Cleanup(func() { deafAfter = old })
	a := start(t, "a", testKey(t, 1), testConfig(t.TempDir()))
	b, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's gossipsub to give up on b", func() bool {
		return a.ConnectedTo(b.ID()) && !slices.Contains(a.PubSub().ListPeers(""), b.ID())
	})
	time.Sleep(2 * deafAfter) // connected and deaf, but b speaks no gossipsub: kept
	if !a.ConnectedTo(b.ID()) {
		t.Fatal("a closed a connection to a peer that does not speak gossipsub")
	}
	b.SetStreamHandler(pubsub.GossipSubID_v11, func(s network.Stream) { s.Reset() }) // identify pushes it to a
	waitFor(t, "a to close the deaf connection", func() bool { return !a.ConnectedTo(b.ID()) })
}
