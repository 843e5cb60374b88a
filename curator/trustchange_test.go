package curator

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/trust"
)

// TestHeadLostToOtherCurator: while a curator builds a head, another
// curator's heads can come first. A head that lost is reported as
// ErrHeadLost (whether it lost at its own seq or to newer ones), and a
// trust change that lost is applied again on the winner, not dropped.
func TestHeadLostToOtherCurator(t *testing.T) {
	ctx := context.Background()
	d := openPlain(t)
	other, err := trust.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherID, err := peer.IDFromPrivateKey(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.ChangeTrust(ctx, TrustChange{Add: []peer.ID{otherID}}); err != nil {
		t.Fatal(err)
	}
	// race makes the other curator publish n heads the first time a head
	// of d is about to be verified, and counts d's heads.
	race := func(n int) *int {
		built := 0
		d.beforeVerify = func() {
			built++
			if built == 1 {
				for range n {
					signOnNewest(t, d, other, nil)
				}
			}
		}
		return &built
	}
	newest := func() trust.Verified {
		v, ok := d.heads.Newest()
		if !ok {
			t.Fatal("no newest head")
		}
		return v
	}

	// Two heads of the other curator: d's is older than the newest.
	before := newest().Head.Seq
	race(2)
	if _, err := d.PublishNow(ctx, true); !errors.Is(err, ErrHeadLost) {
		t.Fatalf("publish while another curator published two heads: %v, want ErrHeadLost", err)
	}
	if v := newest(); v.Head.Seq != before+2 || peer.ID(v.Sig.Signer) != otherID {
		t.Fatalf("newest head seq %d by %s, want seq %d by the other curator", v.Head.Seq, peer.ID(v.Sig.Signer), before+2)
	}

	// The same for a trust change: it is applied on the other's heads.
	for _, n := range []int{1, 2} {
		added := newPeer(t)
		before := newest().Head.Seq
		built := race(n)
		if err := d.ChangeTrust(ctx, TrustChange{Add: []peer.ID{added}}); err != nil {
			t.Fatalf("trust change racing %d heads: %v", n, err)
		}
		v := newest()
		if peer.ID(v.Sig.Signer) != d.id || !slices.ContainsFunc(v.Head.Trust, func(k []byte) bool { return peer.ID(k) == added }) {
			t.Fatalf("racing %d heads: newest head seq %d by %s does not carry the change", n, v.Head.Seq, peer.ID(v.Sig.Signer))
		}
		if !slices.ContainsFunc(v.Head.Trust, func(k []byte) bool { return peer.ID(k) == otherID }) {
			t.Fatalf("racing %d heads: the other curator's key left the trust set", n)
		}
		// With one head of the other at the same seq, the preferred of the
		// two (trust.Prefer) wins: d's head on the first try, or after it.
		switch want := before + int64(n) + 1; {
		case n == 2 && (*built != 2 || v.Head.Seq != want):
			t.Fatalf("racing 2 heads: %d heads built, newest seq %d; want 2 and seq %d", *built, v.Head.Seq, want)
		case n == 1 && (*built < 1 || *built > 2 || v.Head.Seq != before+int64(*built)):
			t.Fatalf("racing 1 head: %d heads built, newest seq %d (was %d)", *built, v.Head.Seq, before)
		}
	}
	d.beforeVerify = nil
}
