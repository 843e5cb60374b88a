package p2p

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	dto "github.com/prometheus/client_model/go"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newClockedNode builds a node (no Run) whose clock the test sets.
func newClockedNode(t *testing.T, seed uint64, clk *testClock) *Node {
	t.Helper()
	n, err := New(testKey(t, seed), testConfig(t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	n.now = clk.now // before any connection consults the gater
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

// TestPenaltyDisconnectsAndRefuses: a verdict against a connected peer
// disconnects it, refuses its dials both ways until the penalty ends,
// counts it (also in Prometheus), and a second offence doubles the
// penalty.
func TestPenaltyDisconnectsAndRefuses(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	b := newClockedNode(t, 1, clk)
	a := newClockedNode(t, 2, &testClock{t: time.Unix(1_700_000_000, 0)})
	ctx := context.Background()
	aInfo := peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}
	bInfo := peer.AddrInfo{ID: b.ID(), Addrs: b.Host().Addrs()}
	if err := b.Connect(ctx, aInfo); err != nil {
		t.Fatal(err)
	}
	lie := verdict{peer: a.ID(), reason: ErrUnwantedBlock, detail: "2 blocks that hash to no CID we asked for"}
	b.guard.apply([]verdict{lie})
	waitFor(t, "B to drop A", func() bool { return !b.ConnectedTo(a.ID()) && !a.ConnectedTo(b.ID()) })

	if err := b.Connect(ctx, aInfo); err == nil {
		t.Error("B dialled the penalised A")
	}
	if err := a.Connect(ctx, bInfo); err == nil && b.ConnectedTo(a.ID()) {
		t.Error("B accepted the penalised A")
	}
	b.guard.apply([]verdict{lie}) // while refused: not penalised again
	label := ErrUnwantedBlock.Error()
	if got := b.BitswapPenaltyCounts(); len(got) != 1 || got[label] != 1 {
		t.Errorf("BitswapPenaltyCounts = %v; want %q: 1", got, label)
	}
	var m dto.Metric
	if err := b.guard.counter.WithLabelValues(label).Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 1 {
		t.Errorf("pinfold_p2p_bitswap_penalties_total{reason=%q} = %v; want 1", label, got)
	}
	pens := b.BitswapPenalties()
	want := clk.now().Add(DefaultConfig().Bitswap.Penalty)
	if len(pens) != 1 || pens[0].Peer != a.ID() || pens[0].Count != 1 || !pens[0].Until.Equal(want) || pens[0].Label != label {
		t.Fatalf("BitswapPenalties = %+v; want A once, until %s", pens, want)
	}

	clk.advance(DefaultConfig().Bitswap.Penalty)
	if err := b.Connect(ctx, aInfo); err != nil {
		t.Fatalf("B could not dial A after its penalty ended: %v", err)
	}
	b.guard.apply([]verdict{{peer: a.ID(), reason: ErrBrokenPromise, detail: "1 want-blocks unanswered for 5s"}})
	waitFor(t, "B to drop A again", func() bool { return !b.ConnectedTo(a.ID()) })
	pens = b.BitswapPenalties()
	want = clk.now().Add(2 * DefaultConfig().Bitswap.Penalty)
	if len(pens) != 1 || pens[0].Count != 2 || !pens[0].Until.Equal(want) || pens[0].Label != ErrBrokenPromise.Error() {
		t.Errorf("BitswapPenalties = %+v; want A twice, until %s (doubled)", pens, want)
	}
	if got := b.BitswapPenaltyCounts(); got[label] != 1 || got[ErrBrokenPromise.Error()] != 1 {
		t.Errorf("BitswapPenaltyCounts = %v; want one of each", got)
	}
}

// TestSparedPeerStaysConnected: a verdict against a peer the node spares
// (a follower's curator) is counted as spared, and the peer stays
// connected and unpenalised.
func TestSparedPeerStaysConnected(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	b := newClockedNode(t, 1, clk)
	a := newClockedNode(t, 2, &testClock{t: time.Unix(1_700_000_000, 0)})
	if err := b.Connect(context.Background(), peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	b.SpareFromPenalties(func(p peer.ID) bool { return p == a.ID() })
	b.guard.apply([]verdict{{peer: a.ID(), reason: ErrBrokenPromise, detail: "1 want-blocks unanswered for 5s"}})
	b.guard.wg.Wait()
	if !b.ConnectedTo(a.ID()) {
		t.Error("B dropped the spared A")
	}
	if pens := b.BitswapPenalties(); len(pens) != 0 {
		t.Errorf("BitswapPenalties = %+v; want none", pens)
	}
	if got := b.BitswapPenaltyCounts(); len(got) != 1 || got["spared: "+ErrBrokenPromise.Error()] != 1 {
		t.Errorf("BitswapPenaltyCounts = %v; want one spared broken promise", got)
	}
	b.SpareFromPenalties(func(peer.ID) bool { return false })
	b.guard.apply([]verdict{{peer: a.ID(), reason: ErrBrokenPromise, detail: "1 want-blocks unanswered for 5s"}})
	waitFor(t, "B to drop A once it is no longer spared", func() bool { return !b.ConnectedTo(a.ID()) })
}

// TestPenaltyTableIsBounded: past maxPenalised peers, expired entries and
// then the soonest to expire make room.
func TestPenaltyTableIsBounded(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	g, err := newContentGuard(DefaultConfig().Bitswap, slog.New(slog.DiscardHandler), clk.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	for i := range maxPenalised + 10 {
		g.apply([]verdict{{peer: peer.ID(fmt.Sprint(i)), reason: ErrBrokenPromise, detail: "x"}})
		clk.advance(time.Millisecond)
	}
	if n := len(g.penalties()); n != maxPenalised {
		t.Errorf("%d penalties remembered; want the bound %d", n, maxPenalised)
	}
	if g.refused(peer.ID("0")) {
		t.Error("the penalty ending soonest was kept over newer ones")
	}
	if !g.refused(peer.ID(fmt.Sprint(maxPenalised + 9))) {
		t.Error("the newest penalty was dropped")
	}
	if got := g.counts()[ErrBrokenPromise.Error()]; got != maxPenalised+10 {
		t.Errorf("counted %d penalties; want %d (counts are not bounded by the table)", got, maxPenalised+10)
	}
}
