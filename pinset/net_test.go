package pinset

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// TestNetwork runs one curator and two followers on real hosts: 10,000
// pins added at the curator reach both followers by broadcast; a
// broadcast authored by a peer outside the trust set changes nothing; a
// follower restarted from its data folder fetches and merges only what it
// missed while it was down, and follows broadcasts again.
func TestNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	ctx := context.Background()
	curKey, f1Key, f2Key, malKey := newKey(t), newKey(t), newKey(t), newKey(t)
	trust := newTrustSet(peerOf(t, curKey))
	// Batches of 1,000 keys: go-ds-crdt re-measures the pending delta on
	// every Put, which the race detector makes very slow for larger ones.
	// The 1,000,000-pin bench uses the default.
	small := func(c *Config) { c.BatchKeys = 1000 }
	cur := startNode(t, t.TempDir(), curKey, nodeOpts{writer: true, trusted: trust, cfg: small})
	f1Dir := t.TempDir()
	f1 := startNode(t, f1Dir, f1Key, nodeOpts{trusted: trust})
	// f2 joins the topic without the validator: the broadcaster's own
	// author check is then the only defence, and must hold.
	f2 := startNode(t, t.TempDir(), f2Key, nodeOpts{trusted: trust, noValidator: true})
	// mallory runs a writer replica that trusts itself.
	mal := startNode(t, t.TempDir(), malKey, nodeOpts{writer: true, trusted: newTrustSet(peerOf(t, malKey))})
	connectAll(t, cur, f1, f2, mal)

	// 10,000 pins reach both followers by broadcast alone.
	rng := rand.New(rand.NewPCG(7, 7))
	m := model{}
	pins := makePins(0, 10_000, 37, rng)
	start := time.Now()
	if n, err := cur.set.Add(ctx, pins); err != nil || n != len(pins) {
		t.Fatalf("Add = %d, %v", n, err)
	}
	m.add(pins)
	added := time.Since(start)
	// Stats follow go-ds-crdt's PutHook, which runs just before a delta
	// is persisted and marked processed: wait for CaughtUp, not counts.
	heads := cur.set.Heads()
	for _, f := range []*node{cur, f1, f2} {
		eventually(t, 60*time.Second, "followers process the curator's heads", func() (bool, error) {
			return f.set.CaughtUp(ctx, heads)
		})
		checkAgainst(t, f.set, m)
	}
	t.Logf("10,000 pins: added in %s, at both followers after %s", added, time.Since(start))

	// Mallory's broadcast is rejected everywhere and changes nothing.
	malPins := makePins(1_000_000, 10, 3, rng)
	if _, err := mal.set.Add(ctx, malPins); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "mallory's broadcast rejected", func() (bool, error) {
		return cur.val.Stats().Untrusted > 0 && f1.val.Stats().Untrusted > 0 && f2.set.Stats().Untrusted > 0, nil
	})
	malHeads := mal.set.Heads()
	for _, f := range []*node{cur, f1, f2} {
		if ok, err := f.set.CaughtUp(ctx, malHeads); err != nil || ok {
			t.Fatalf("mallory's head processed: %v, %v", ok, err)
		}
		if has, err := f.set.Has(ctx, malPins[0].CID); err != nil || has {
			t.Fatalf("mallory's pin present: %v, %v", has, err)
		}
		if p, err := f.set.isProcessed(ctx, malHeads[0]); err != nil || p {
			t.Fatalf("mallory's block processed: %v, %v", p, err)
		}
		if st := f.set.Stats(); st.Pins != int64(len(m)) {
			t.Fatalf("pins changed to %d after mallory's broadcast", st.Pins)
		}
	}

	// f1 stops; meanwhile the curator adds pins, whose broadcast f1 misses.
	// Restarted from its folder, f1 is given the curator's heads (as a
	// signed head would carry them) and fetches only the new block.
	f1.stop()
	more := makePins(20_000, 100, 37, rng)
	if _, err := cur.set.Add(ctx, more); err != nil {
		t.Fatal(err)
	}
	m.add(more)
	f1 = startNode(t, f1Dir, f1Key, nodeOpts{trusted: trust})
	connectAll(t, cur, f1)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := f1.set.WaitFor(wctx, cur.set.Heads()); err != nil {
		t.Fatal(err)
	}
	if got, st := f1.blocksReceived(), f1.set.Stats(); got != 1 || st.KeysApplied != uint64(len(more)) {
		t.Fatalf("restarted follower fetched %d blocks and merged %d keys, want 1 and %d", got, st.KeysApplied, len(more))
	}
	checkAgainst(t, f1.set, m)

	// And it follows broadcasts again.
	last := makePins(30_000, 100, 37, rng)
	if _, err := cur.set.Add(ctx, last); err != nil {
		t.Fatal(err)
	}
	m.add(last)
	heads = cur.set.Heads()
	eventually(t, 30*time.Second, "restarted follower receives new pins", func() (bool, error) {
		return f1.set.CaughtUp(ctx, heads)
	})
	if got, st := f1.blocksReceived(), f1.set.Stats(); got != 2 || st.KeysApplied != uint64(len(more)+len(last)) {
		t.Fatalf("restarted follower fetched %d blocks and merged %d keys, want 2 and %d", got, st.KeysApplied, len(more)+len(last))
	}
	checkAgainst(t, f1.set, m)
}
