package records

import (
	"context"
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/trust"
)

// MaxSize bounds an offer, and one ACK in a batch.
const MaxSize = 8 << 10

// OfferValidator accepts offers for cluster signed by the follower that
// published them (the gossipsub author, not the forwarding peer).
func OfferValidator(cluster peer.ID) p2p.Validator {
	return func(_ context.Context, msg *pubsub.Message) error {
		so, err := verifyOffer(cluster, msg)
		if err != nil {
			return err
		}
		msg.ValidatorData = so // readers take it from here (VerifiedOffer)
		return nil
	}
}

// VerifiedOffer returns the offer in msg, a message OfferValidator
// accepted: the one the validator verified and kept with the message, so
// that a reader does not check the signature a second time; else (a
// message that did not pass through it) it verifies msg itself.
func VerifiedOffer(cluster peer.ID, msg *pubsub.Message) (dag.SignedOffer, error) {
	if so, ok := msg.ValidatorData.(dag.SignedOffer); ok {
		return so, nil
	}
	return verifyOffer(cluster, msg)
}

// verifyOffer verifies the offer in msg for cluster, signed by msg's
// gossipsub author.
func verifyOffer(cluster peer.ID, msg *pubsub.Message) (dag.SignedOffer, error) {
	so, err := trust.VerifyOffer(cluster, msg.Data)
	if err != nil {
		return dag.SignedOffer{}, err
	}
	if err := sameAuthor("offer", peer.ID(so.Offer.Peer), msg.GetFrom()); err != nil {
		return dag.SignedOffer{}, err
	}
	return so, nil
}

func sameAuthor(what string, signer, author peer.ID) error {
	if signer != author {
		return fmt.Errorf("%s of %s published by %s: %w", what, signer, author, trust.ErrSignerMismatch)
	}
	return nil
}
