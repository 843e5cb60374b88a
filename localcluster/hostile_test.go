package localcluster_test

import (
	"context"
	"crypto/rand"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/localcluster"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/pinset"
	"github.com/pinfold/pinfold/publish"
	"github.com/pinfold/pinfold/trust"
)

// Issue 11: a genuine head reaches every follower within deliveryBound
// while an attack runs (0.1 s on loopback without one). Asserted with
// slack for a loaded CI machine, more under the race detector (CI runs the
// suite with -race, its packages in parallel; a head there once took
// 3.1 s during the first bursts of the flood); the measured time is
// logged. Run without -race for the figure the issue names.
const deliveryBound = time.Second

var deliverySlack = map[bool]time.Duration{false: 3, true: 10}[raceEnabled]

// victim is one node of the cluster under attack.
type victim struct {
	name  string
	node  *p2p.Node
	heads *headsync.Sync
}

// hostile is a cluster of one curator and two followers, caught up, with
// an attacker connected to the nodes it targets.
type hostile struct {
	c       *localcluster.Cluster
	victims []victim // curator, f1, f2
	atk     *attacker
	asked   *atomic.Int64 // bitswap reads of the attacker's store
}

func startHostile(t *testing.T, targets ...int) *hostile {
	t.Helper()
	ctx := context.Background()
	c := startCluster(t)
	h := &hostile{c: c, victims: []victim{{"curator", c.Curator.Node(), c.Curator.Heads()}}}
	for _, name := range []string{"f1", "f2"} {
		f, err := c.AddFollower(ctx, name, localcluster.FollowerOptions{Pledge: configs.Pledge{Bytes: 1 << 30}})
		if err != nil {
			t.Fatal(err)
		}
		h.victims = append(h.victims, victim{name, f.Daemon.Node(), f.Daemon.Heads()})
	}
	if _, err := c.Curator.AddPins(ctx, fakePins(t, 0, 10)); err != nil {
		t.Fatal(err)
	}
	for _, f := range c.Followers() {
		waitFor(t, 30*time.Second, f.Name+" to catch up", caughtUpTo(f, c, 10))
	}
	if len(targets) == 0 {
		targets = []int{0, 1, 2}
	}
	var ais []peer.AddrInfo
	for _, i := range targets {
		n := h.victims[i].node
		ais = append(ais, peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()})
	}
	h.atk = newAttacker(t, []string{c.Config.Topics.Heads, c.Config.Topics.CRDT}, ais...)
	h.asked = h.atk.asked
	return h
}

// countingStore counts the reads bitswap makes to answer wants.
type countingStore struct {
	blockstore.Blockstore
	n *atomic.Int64
}

func (s countingStore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	s.n.Add(1)
	return s.Blockstore.Has(ctx, c)
}

func (s countingStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	s.n.Add(1)
	return s.Blockstore.Get(ctx, c)
}

func (s countingStore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	s.n.Add(1)
	return s.Blockstore.GetSize(ctx, c)
}

// refusals is everything v refused so far: topic rejections and heads
// rejected by head sync.
func refusals(v victim) uint64 {
	var n uint64
	for _, c := range v.node.RejectionCounts() {
		n += c
	}
	_, counts := v.heads.Rejections()
	for _, c := range counts {
		n += c
	}
	return n
}

func (h *hostile) refusalsNow() []uint64 {
	out := make([]uint64, len(h.victims))
	for i, v := range h.victims {
		out[i] = refusals(v)
	}
	return out
}

// landed waits until the attack reached the targets: each refused
// something new, or a victim asked the attacker for a block.
func (h *hostile) landed(t *testing.T, before []uint64, targets ...int) {
	t.Helper()
	if len(targets) == 0 {
		targets = []int{0, 1, 2}
	}
	waitFor(t, 10*time.Second, "the attack to reach its targets", func() bool {
		if h.asked.Load() > 0 {
			return true
		}
		for _, i := range targets {
			if refusals(h.victims[i]) <= before[i] {
				return false
			}
		}
		return true
	})
}

// deliver publishes a genuine head and returns it and when every follower
// held it (the curator's publish call's time is logged).
func (h *hostile) deliver(t *testing.T) (head trust.Verified, delivered time.Duration) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	if _, err := h.c.Curator.PublishNow(ctx, true); err != nil {
		t.Fatalf("publish a genuine head: %v", err)
	}
	publishCall := time.Since(start)
	want, _ := h.c.Curator.Heads().Newest()
	waitFor(t, 2*time.Minute, "the genuine head to reach every follower", func() bool {
		for _, v := range h.victims[1:] {
			got, ok := v.heads.Newest()
			if !ok || got.Head.Seq < want.Head.Seq {
				return false
			}
		}
		return true
	})
	delivered = time.Since(start)
	t.Logf("genuine head seq %d: curator's publish call %s, at every follower after %s",
		want.Head.Seq, publishCall.Round(time.Millisecond), delivered.Round(time.Millisecond))
	if delivered > deliverySlack*deliveryBound {
		t.Errorf("the genuine head took %s to reach every follower; the bound is %s (asserted with %dx slack, race detector %v)",
			delivered, deliveryBound, deliverySlack, raceEnabled)
	}
	return want, delivered
}

// checkNotStored fails if any victim holds one of the blocks, or adopted
// anything the curator did not sign, or is behind the head it delivered.
func (h *hostile) checkNotStored(t *testing.T, delivered trust.Verified, junk ...cid.Cid) {
	t.Helper()
	ctx := context.Background()
	want := delivered
	curatorID := want.Sig.Signer
	for _, v := range h.victims {
		kept := 0
		for _, c := range junk {
			if ok, _ := v.node.BlockService().Blockstore().Has(ctx, c); ok {
				kept++
			}
		}
		if kept > 0 {
			t.Errorf("%s stored %d of %d unverified blocks", v.name, kept, len(junk))
		}
		got, ok := v.heads.Newest()
		if !ok || string(got.Sig.Signer) != string(curatorID) || got.Head.Seq < want.Head.Seq || slices.ContainsFunc(junk, got.CID.Equals) {
			t.Errorf("%s's newest head is %s (seq %d, signer %s); want the curator's, seq >= %d",
				v.name, got.CID, got.Head.Seq, peer.ID(got.Sig.Signer), want.Head.Seq)
		}
	}
}

// checkCounted fails unless each target counted a refusal whose reason
// contains one of reasons.
func (h *hostile) checkCounted(t *testing.T, targets []int, reasons ...string) {
	t.Helper()
	for _, i := range targets {
		v := h.victims[i]
		found := false
		for _, r := range v.node.Rejections() {
			for _, want := range reasons {
				if strings.Contains(r.Label, want) && r.Author == h.atk.id {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s counted no refusal of the attacker's messages for %q; it has %v", v.name, reasons, v.node.RejectionCounts())
		}
	}
}

func cids(data ...[]byte) []cid.Cid {
	out := make([]cid.Cid, len(data))
	for i, d := range data {
		out[i] = dag.CID(d)
	}
	return out
}

// Two forged heads name the curator as signer, carry a junk signature and
// point at a parent nobody has.
func TestHostileForgedHeadsMissingParent(t *testing.T) {
	t.Parallel()
	h := startHostile(t)
	newest, _ := h.c.Curator.Heads().Newest()
	curator := newest.Sig.Signer
	var forged [][]byte
	for i := range 2 {
		missing := dag.CID([]byte("nobody has this parent " + string(rune('a'+i))))
		forged = append(forged, junkHead(t, newest, missing, newest.Head.Seq+5+int64(i), curator))
	}
	before := h.refusalsNow()
	for _, f := range forged {
		h.atk.publish(h.c.Config.Topics.Heads, announcement(t, f, nil))
	}
	h.landed(t, before)
	head, _ := h.deliver(t)
	h.checkNotStored(t, head, cids(forged...)...)
	h.checkCounted(t, []int{0, 1, 2}, trust.ErrBadSignature.Error())
}

// A chain of 150 junk heads on the newest genuine one, served by the
// attacker over bitswap, announced by its top.
func TestHostileJunkChain(t *testing.T) {
	t.Parallel()
	h := startHostile(t)
	newest, _ := h.c.Curator.Heads().Newest()
	parent := newest.CID
	var chain [][]byte
	for i := range 150 {
		b := junkHead(t, newest, parent, newest.Head.Seq+1+int64(i), newest.Sig.Signer)
		chain = append(chain, b)
		parent = dag.CID(b)
	}
	h.atk.serve(chain...)
	before := h.refusalsNow()
	h.atk.publish(h.c.Config.Topics.Heads, announcement(t, chain[len(chain)-1], nil))
	h.landed(t, before)
	head, _ := h.deliver(t)
	h.checkNotStored(t, head, cids(chain...)...)
	h.checkCounted(t, []int{0, 1, 2}, trust.ErrBadSignature.Error())
}

// Record-only announcements: an IPNS record for another name, and junk
// bytes; and a CRDT broadcast from an untrusted author. The attacker
// reaches f1 only; nothing may be relayed past it, every refusal counted.
func TestHostileRecordOnly(t *testing.T) {
	t.Parallel()
	h := startHostile(t, 1)
	newest, _ := h.c.Curator.Heads().Newest()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := publish.BuildRecord(key, newest.CID, uint64(newest.Head.Seq+1), time.Now(), publish.DefaultRecordConfig())
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 300)
	_, _ = rand.Read(junk)
	before := h.refusalsNow()
	h.atk.publish(h.c.Config.Topics.Heads, announcement(t, nil, other.Raw), announcement(t, nil, junk))
	h.atk.publish(h.c.Config.Topics.CRDT, junk)
	h.landed(t, before, 1)
	h.deliver(t)
	h.checkCounted(t, []int{1}, "ipns", "record")
	waitFor(t, 10*time.Second, "f1 to count the CRDT broadcast", func() bool {
		return h.victims[1].node.RejectionCounts()[pinset.ErrUntrustedAuthor.Error()] > 0
	})
	// Not relayed: the curator and f2 never saw the records.
	for _, i := range []int{0, 2} {
		rs, _ := h.victims[i].heads.Rejections()
		for _, r := range rs {
			if r.Source == headsync.FromTopic {
				t.Errorf("%s saw a relayed record: %+v", h.victims[i].name, r)
			}
		}
		for _, r := range h.victims[i].node.Rejections() {
			if r.Author == h.atk.id {
				t.Errorf("%s saw a relayed record: %+v", h.victims[i].name, r)
			}
		}
	}
}

// Bursts of junk-signature heads: no honest head message is lost, and
// genuine heads published during the flood arrive within the bound.
// PINFOLD_FLOOD_FULL=1 runs the rates (20 bursts of 400 over 6 s);
// by default 10 bursts over 3 s.
func TestHostileFlood(t *testing.T) {
	t.Parallel()
	bursts := 10
	if os.Getenv("PINFOLD_FLOOD_FULL") != "" {
		bursts = 20
	}
	h := startHostile(t)
	newest, _ := h.c.Curator.Heads().Newest()
	burst := make([][]byte, 400)
	for i := range burst {
		burst[i] = announcement(t, junkHead(t, newest, newest.CID, newest.Head.Seq+1, newest.Sig.Signer), nil)
	}
	done := make(chan struct{})
	go func() { // owned by the test: ends after the last burst
		defer close(done)
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for range bursts {
			h.atk.publish(h.c.Config.Topics.Heads, burst...)
			<-tick.C
		}
	}()
	var worst time.Duration
	genuine := 0
	for flooding := true; flooding; {
		_, d := h.deliver(t)
		worst = max(worst, d)
		genuine++
		select {
		case <-done:
			flooding = false
		default:
		}
	}
	t.Logf("%d genuine heads during %d bursts of 400; slowest reached every follower after %s", genuine, bursts, worst)
	curatorID := peer.ID(newest.Sig.Signer)
	for _, v := range h.victims[1:] {
		for _, r := range v.node.Rejections() {
			// An older head that arrives after a newer one (heads here are
			// published tens of milliseconds apart, and gossipsub validates
			// concurrently) is rightly ignored: the follower has the newer.
			if r.Author == curatorID && !strings.Contains(r.Reason, trust.ErrStaleSeq.Error()) {
				t.Errorf("%s dropped %d of the curator's messages: %s", v.name, r.Count, r.Reason)
			}
		}
	}
	h.checkCounted(t, []int{0, 1, 2}, trust.ErrBadSignature.Error(), "rate", "budget")
}
