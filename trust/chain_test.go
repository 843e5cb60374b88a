package trust

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
)

// testChain is a linear chain of signed heads with trust changes.
type testChain struct {
	rules   Rules
	blocks  blocks
	heads   []cid.Cid
	decoded []dag.SignedHead
	trust   [][]string // curator names in the trust set of each head
	removed []string   // keys removed at some point and never re-added
}

// buildChain builds n heads (genesis included) from a fixed seed. Every
// 10th head rotates the oldest curator out for a new one, every 25th adds a
// curator (at most 6), every 40th removes one (at least 1). Each head is
// signed by a curator of its parent's trust set, picked by the seeded PRNG.
func buildChain(t testing.TB, n int, seed uint64) *testChain {
	t.Helper()
	prng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	next := 0
	newKey := func() string { next++; return fmt.Sprintf("c%d", next-1) }
	cur := []string{newKey(), newKey(), newKey()}
	ch := &testChain{rules: testRules(t, cur...), blocks: blocks{}}
	ever := map[string]bool{}
	for _, k := range cur {
		ever[k] = true
	}
	var parent *cid.Cid
	signers := cur
	for i := range n {
		trust := slices.Clone(cur)
		switch {
		case i > 0 && i%40 == 0 && len(trust) > 1:
			trust = trust[1:]
		case i > 0 && i%25 == 0 && len(trust) < 6:
			trust = append(trust, newKey())
		case i > 0 && i%10 == 0:
			trust = append(trust[1:], newKey())
		}
		signer := signers[prng.IntN(len(signers))]
		// Seq: strictly increasing, sometimes by more than one.
		var seq int64
		if i > 0 {
			seq = ch.decoded[i-1].Head.Seq + 1 + int64(prng.IntN(3))
		}
		c, data, sh := signHead(t, spec{cluster: ch.rules.Cluster, signer: testKey(t, signer),
			trust: trustSet(t, trust...), seq: seq, time: baseTime + int64(i)*1000, parent: parent})
		ch.blocks[c] = data
		ch.heads = append(ch.heads, c)
		ch.decoded = append(ch.decoded, sh)
		ch.trust = append(ch.trust, trust)
		for _, k := range trust {
			ever[k] = true
		}
		parent = &ch.heads[len(ch.heads)-1]
		cur, signers = trust, trust
	}
	for k := range ever {
		if !slices.Contains(cur, k) {
			ch.removed = append(ch.removed, k)
		}
	}
	slices.Sort(ch.removed)
	return ch
}

func (ch *testChain) last() int { return len(ch.heads) - 1 }

// child signs a head on top of head i.
func (ch *testChain) child(t testing.TB, i int, signer string, seqDelta int64) (cid.Cid, []byte) {
	t.Helper()
	p := ch.heads[i]
	c, data, _ := signHead(t, spec{cluster: ch.rules.Cluster, signer: testKey(t, signer),
		trust: trustSet(t, ch.trust[i]...), seq: ch.decoded[i].Head.Seq + seqDelta,
		time: ch.decoded[i].Head.Time + 1, parent: &p})
	ch.blocks[c] = data
	return c, data
}

func TestChainOf1000WithRotations(t *testing.T) {
	ch := buildChain(t, 1000, 1)
	t.Logf("seed 1: %d heads, final trust %v, %d keys removed on the way", len(ch.heads), ch.trust[ch.last()], len(ch.removed))
	if len(ch.removed) < 50 {
		t.Fatalf("only %d keys rotated out; the chain does not exercise rotation", len(ch.removed))
	}
	heads, err := VerifyChain(ch.rules, cid.Undef, ch.heads[ch.last()], ch.blocks.get, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 1000 {
		t.Fatalf("%d heads verified, want 1000", len(heads))
	}
	for i, v := range heads {
		if !v.CID.Equals(ch.heads[i]) {
			t.Fatalf("head %d: %s, want %s", i, v.CID, ch.heads[i])
		}
	}
	// From a known head in the middle.
	mid, err := VerifyChain(ch.rules, ch.heads[499], ch.heads[ch.last()], ch.blocks.get, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(mid) != 500 || !mid[0].CID.Equals(ch.heads[500]) {
		t.Fatalf("from the middle: %d heads", len(mid))
	}
	// Every key removed on the way can sign nothing on top of the last head.
	for _, k := range ch.removed {
		c, _ := ch.child(t, ch.last(), k, 1)
		_, err := VerifyChain(ch.rules, ch.heads[ch.last()], c, ch.blocks.get, testNow)
		if !errors.Is(err, ErrUntrustedSigner) {
			t.Fatalf("removed key %s: %v, want ErrUntrustedSigner", k, err)
		}
	}
	// A current curator can.
	c, _ := ch.child(t, ch.last(), ch.trust[ch.last()][0], 1)
	if got, err := VerifyChain(ch.rules, ch.heads[ch.last()], c, ch.blocks.get, testNow); err != nil || len(got) != 1 {
		t.Fatalf("current curator: %d heads, %v", len(got), err)
	}
}

func TestVerifyChainErrors(t *testing.T) {
	ch := buildChain(t, 60, 2)
	get := ch.blocks.get
	verify := func(from, to cid.Cid) ([]Verified, error) { return VerifyChain(ch.rules, from, to, get, testNow) }

	if got, err := verify(ch.heads[20], ch.heads[20]); err != nil || len(got) != 0 {
		t.Fatalf("from == to: %d heads, %v", len(got), err)
	}
	if _, err := verify(ch.heads[20], ch.heads[10]); !errors.Is(err, ErrStaleSeq) {
		t.Fatalf("older head: %v, want ErrStaleSeq", err)
	}

	// Equivocation: the signer of head 20 signs another head on 19 at the
	// same seq; a follower at head 20 sees a chain through it.
	signer20 := signerName(t, ch, 20)
	x, _ := ch.child(t, 19, signer20, ch.decoded[20].Head.Seq-ch.decoded[19].Head.Seq)
	if x.Equals(ch.heads[20]) {
		t.Fatal("test head equals head 20")
	}
	xIdx := len(ch.heads)
	ch.heads = append(ch.heads, x)
	xsh, _ := dag.DecodeSignedHead(ch.blocks[x])
	ch.decoded = append(ch.decoded, xsh)
	ch.trust = append(ch.trust, ch.trust[19])
	y, _ := ch.child(t, xIdx, ch.trust[19][0], 1)
	for _, to := range []cid.Cid{x, y} {
		_, err := verify(ch.heads[20], to)
		var fe *ForkError
		if !errors.Is(err, ErrFork) || !errors.As(err, &fe) {
			t.Fatalf("equivocation via %s: %v, want ErrFork", to, err)
		}
		pair := []cid.Cid{fe.A, fe.B}
		if !slices.ContainsFunc(pair, x.Equals) || !slices.ContainsFunc(pair, ch.heads[20].Equals) ||
			fe.Seq != ch.decoded[20].Head.Seq || fe.Signer != testID(t, signer20) || !fe.Parent.Equals(ch.heads[19]) {
			t.Fatalf("fork evidence %+v", fe)
		}
		if !strings.Contains(err.Error(), x.String()) || !strings.Contains(err.Error(), ch.heads[20].String()) {
			t.Fatalf("fork error %q does not name both heads", err)
		}
	}

	// Another curator racing from the same parent: not a fork.
	other := otherCurator(t, ch, 19, signer20)
	z, _ := ch.child(t, 19, other, ch.decoded[20].Head.Seq-ch.decoded[19].Head.Seq)
	if _, err := verify(ch.heads[20], z); !errors.Is(err, ErrStaleSeq) || errors.Is(err, ErrFork) {
		t.Fatalf("race at equal seq: %v, want ErrStaleSeq", err)
	}
	zIdx := len(ch.heads)
	ch.heads = append(ch.heads, z)
	zsh, _ := dag.DecodeSignedHead(ch.blocks[z])
	ch.decoded = append(ch.decoded, zsh)
	ch.trust = append(ch.trust, ch.trust[19])
	w, _ := ch.child(t, zIdx, ch.trust[19][0], 5)
	if _, err := verify(ch.heads[20], w); !errors.Is(err, ErrNotDescendant) || errors.Is(err, ErrFork) {
		t.Fatalf("other branch: %v, want ErrNotDescendant", err)
	}
	if got, err := verify(ch.heads[19], w); err != nil || len(got) != 2 {
		t.Fatalf("other branch from the common parent: %d heads, %v", len(got), err)
	}

	// Bounded length.
	short := ch.rules
	short.MaxChain = 10
	if _, err := VerifyChain(short, cid.Undef, ch.heads[50], get, testNow); !errors.Is(err, ErrChainTooLong) {
		t.Fatalf("long chain: %v, want ErrChainTooLong", err)
	}
	if got, err := VerifyChain(short, ch.heads[40], ch.heads[50], get, testNow); err != nil || len(got) != 10 {
		t.Fatalf("chain at the limit: %d, %v", len(got), err)
	}

	// A missing block, a getter returning other bytes, a bad head inside.
	missing := blocks{}
	for c, b := range ch.blocks {
		missing[c] = b
	}
	delete(missing, ch.heads[30])
	if _, err := VerifyChain(ch.rules, ch.heads[20], ch.heads[40], missing.get, testNow); !errors.As(err, new(errNotFound)) {
		t.Fatalf("missing block: %v", err)
	}
	lying := func(c cid.Cid) ([]byte, error) {
		if c.Equals(ch.heads[35]) {
			return ch.blocks[ch.heads[34]], nil
		}
		return get(c)
	}
	if _, err := VerifyChain(ch.rules, ch.heads[20], ch.heads[40], lying, testNow); !errors.Is(err, ErrMalformed) {
		t.Fatalf("lying getter: %v, want ErrMalformed", err)
	}
	future := ch.rules
	if _, err := VerifyChain(future, cid.Undef, ch.heads[59], get, testNow.Add(-24*testHour-10*time.Minute)); !errors.Is(err, ErrFutureTime) {
		t.Fatalf("clock a day behind: %v, want ErrFutureTime", err)
	}
	wrong := ch.rules
	wrong.Cluster = testID(t, "other-cluster")
	if _, err := VerifyChain(wrong, ch.heads[10], ch.heads[20], get, testNow); !errors.Is(err, ErrWrongCluster) {
		t.Fatalf("known head of another cluster: %v", err)
	}
	if _, err := VerifyChain(ch.rules, ch.heads[10], dag.CID([]byte("x")), get, testNow); err == nil {
		t.Fatal("unknown head accepted")
	}
	// Genesis trust from the rules: another set rejects the chain.
	bad := ch.rules
	bad.Trust = []peer.ID{testID(t, "stranger")}
	if _, err := VerifyChain(bad, cid.Undef, ch.heads[5], get, testNow); !errors.Is(err, ErrUntrustedSigner) {
		t.Fatalf("wrong genesis trust: %v", err)
	}
	// A descendant of a different genesis.
	g2, g2Data, _ := signHead(t, spec{cluster: ch.rules.Cluster, signer: testKey(t, ch.trust[0][0]),
		trust: trustSet(t, ch.trust[0]...), time: baseTime + 5})
	ch.blocks[g2] = g2Data
	g2c, g2cData, _ := signHead(t, spec{cluster: ch.rules.Cluster, signer: testKey(t, ch.trust[0][0]),
		trust: trustSet(t, ch.trust[0]...), seq: 1000, time: baseTime + 6, parent: &g2})
	ch.blocks[g2c] = g2cData
	if _, err := verify(ch.heads[3], g2c); !errors.Is(err, ErrNotDescendant) {
		t.Fatalf("other genesis: %v, want ErrNotDescendant", err)
	}
	if got, err := verify(cid.Undef, g2c); err != nil || len(got) != 2 {
		t.Fatalf("other genesis from scratch: %d heads, %v", len(got), err)
	}
}

const testHour = time.Hour

func signerName(t *testing.T, ch *testChain, i int) string {
	t.Helper()
	for _, k := range ch.trust[max(i-1, 0)] {
		if bytes.Equal([]byte(testID(t, k)), ch.decoded[i].Sig.Signer) {
			return k
		}
	}
	t.Fatalf("signer of head %d not found", i)
	return ""
}

func otherCurator(t *testing.T, ch *testChain, i int, not string) string {
	t.Helper()
	for _, k := range ch.trust[i] {
		if k != not {
			return k
		}
	}
	t.Fatalf("head %d has a single curator", i)
	return ""
}

// verifiedStub builds a Verified value for pure Prefer/CheckFork tests.
func verifiedStub(seq int64, cidSeed string, parentSeed string, signer []byte) Verified {
	v := Verified{CID: dag.CID([]byte(cidSeed))}
	v.Head.Seq = seq
	if parentSeed != "" {
		p := dag.CID([]byte(parentSeed))
		v.Head.Parent = &p
	}
	v.Sig.Signer = signer
	return v
}

// TestPreferProperties checks Prefer against a reference: the maximum of
// sorting by seq descending, then CID bytes ascending.
func TestPreferProperties(t *testing.T) {
	prng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		vs := make([]Verified, 2+prng.IntN(5))
		for i := range vs {
			vs[i] = verifiedStub(int64(prng.IntN(4)), fmt.Sprint(prng.IntN(6)), "", nil)
		}
		ref := slices.Clone(vs)
		slices.SortFunc(ref, func(a, b Verified) int {
			if a.Head.Seq != b.Head.Seq {
				return int(b.Head.Seq - a.Head.Seq)
			}
			return bytes.Compare(a.CID.Bytes(), b.CID.Bytes())
		})
		got := vs[0]
		for _, v := range vs[1:] {
			got = Prefer(got, v)
		}
		if !got.CID.Equals(ref[0].CID) || got.Head.Seq != ref[0].Head.Seq {
			t.Fatalf("Prefer folded to %d/%s, reference %d/%s", got.Head.Seq, got.CID, ref[0].Head.Seq, ref[0].CID)
		}
		a, b := vs[0], vs[1]
		if p, q := Prefer(a, b), Prefer(b, a); !p.CID.Equals(q.CID) || p.Head.Seq != q.Head.Seq {
			t.Fatal("Prefer depends on argument order")
		}
	}
}

// TestCheckForkProperties checks CheckFork against its definition on
// random pairs over small domains, so every case occurs.
func TestCheckForkProperties(t *testing.T) {
	prng := rand.New(rand.NewPCG(5, 6))
	signers := [][]byte{[]byte(testID(t, "k1")), []byte(testID(t, "k2"))}
	parents := []string{"", "p1", "p2"}
	seen := map[bool]int{}
	for range 3000 {
		a := verifiedStub(int64(prng.IntN(2)), fmt.Sprint(prng.IntN(3)), parents[prng.IntN(3)], signers[prng.IntN(2)])
		b := verifiedStub(int64(prng.IntN(2)), fmt.Sprint(prng.IntN(3)), parents[prng.IntN(3)], signers[prng.IntN(2)])
		want := !a.CID.Equals(b.CID) && a.Head.Seq == b.Head.Seq && sameParent(a.Head.Parent, b.Head.Parent) &&
			bytes.Equal(a.Sig.Signer, b.Sig.Signer)
		err := CheckFork(a, b)
		if (err != nil) != want {
			t.Fatalf("CheckFork(%+v, %+v) = %v, want fork %v", a, b, err, want)
		}
		if err != nil {
			var fe *ForkError
			if !errors.As(err, &fe) || bytes.Compare(fe.A.Bytes(), fe.B.Bytes()) >= 0 {
				t.Fatalf("evidence %v not ordered", err)
			}
			if err2 := CheckFork(b, a); err2 == nil || err2.Error() != err.Error() {
				t.Fatal("CheckFork depends on argument order")
			}
		}
		seen[want]++
	}
	if seen[true] == 0 || seen[false] == 0 {
		t.Fatalf("cases not covered: %v", seen)
	}
}
