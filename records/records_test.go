package records

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/trust"
)

func offerMessage(t *testing.T, cluster peer.ID, key crypto.PrivKey, author peer.ID) *pubsub.Message {
	t.Helper()
	id, _ := peer.IDFromPrivateKey(key)
	so, err := trust.SignOffer(key, dag.Offer{Version: dag.Version, Cluster: []byte(cluster), Peer: []byte(id), Capacity: 1 << 30, Free: 1 << 31, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	data, err := dag.EncodeSignedOffer(so)
	if err != nil {
		t.Fatal(err)
	}
	return &pubsub.Message{Message: &pb.Message{Data: data, From: []byte(author)}}
}

// TestVerifiedOffer: the validator keeps the offer it verified with the
// message, and readers take it from there; a message the validator did
// not see is verified by VerifiedOffer itself, signer and author alike.
func TestVerifiedOffer(t *testing.T) {
	gen := func() (crypto.PrivKey, peer.ID) {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := peer.IDFromPrivateKey(k)
		return k, id
	}
	_, cluster := gen()
	key, id := gen()
	_, stranger := gen()

	msg := offerMessage(t, cluster, key, id)
	if err := OfferValidator(cluster)(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	kept, ok := msg.ValidatorData.(dag.SignedOffer)
	if !ok || peer.ID(kept.Offer.Peer) != id {
		t.Fatalf("validator kept %T %+v with the message", msg.ValidatorData, msg.ValidatorData)
	}
	if so, err := VerifiedOffer(cluster, msg); err != nil || peer.ID(so.Offer.Peer) != id {
		t.Fatalf("VerifiedOffer after the validator = %v, %v", so.Offer.Peer, err)
	}

	plain := offerMessage(t, cluster, key, id) // never validated
	if so, err := VerifiedOffer(cluster, plain); err != nil || peer.ID(so.Offer.Peer) != id {
		t.Fatalf("VerifiedOffer of an unvalidated message = %v, %v", so.Offer.Peer, err)
	}
	forged := offerMessage(t, cluster, key, id)
	forged.Data[len(forged.Data)-1] ^= 1
	if _, err := VerifiedOffer(cluster, forged); err == nil {
		t.Fatal("VerifiedOffer accepted an offer with a broken signature")
	}
	relayed := offerMessage(t, cluster, key, stranger) // published by another peer
	if _, err := VerifiedOffer(cluster, relayed); !errors.Is(err, trust.ErrSignerMismatch) {
		t.Fatalf("VerifiedOffer of an offer published by another peer = %v, want ErrSignerMismatch", err)
	}
	if err := OfferValidator(cluster)(context.Background(), relayed); !errors.Is(err, trust.ErrSignerMismatch) || relayed.ValidatorData != nil {
		t.Fatalf("validator on an offer published by another peer = %v, kept %v", err, relayed.ValidatorData)
	}
}
