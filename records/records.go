package records

import (
	"context"
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/trust"
)

// MaxSize bounds an offer, and one ACK in a batch.
const MaxSize = 8 << 10

// OfferValidator accepts offers for cluster signed by the follower that
// published them (the gossipsub author, not the forwarding peer).
func OfferValidator(cluster peer.ID) p2p.Validator {
	return func(_ context.Context, msg *pubsub.Message) error {
		so, err := trust.VerifyOffer(cluster, msg.Data)
		if err != nil {
			return err
		}
		return sameAuthor("offer", peer.ID(so.Offer.Peer), msg.GetFrom())
	}
}

func sameAuthor(what string, signer, author peer.ID) error {
	if signer != author {
		return fmt.Errorf("%s of %s published by %s: %w", what, signer, author, trust.ErrSignerMismatch)
	}
	return nil
}
