// Package records holds the gossipsub validators of the followers' signed
// records: offers and ACKs. Curators and followers register the same ones,
// so a record that one peer forwards, every peer would have accepted.
package records

import (
	"context"
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/trust"
)

// MaxSize bounds an offer or ACK message.
const MaxSize = 8 << 10

// OfferValidator accepts offers for cluster signed by the follower that
// published them (the gossipsub author, not the forwarding peer).
func OfferValidator(cluster peer.ID) p2p.Validator {
	return func(_ context.Context, msg *pubsub.Message) error {
		so, err := trust.VerifyOffer(cluster, msg.Data)
		if err != nil {
			return err
		}
		return sameAuthor("offer", peer.ID(so.Offer.Peer), msg)
	}
}

// AckValidator accepts ACKs and releases for cluster signed by the
// follower that published them.
func AckValidator(cluster peer.ID) p2p.Validator {
	return func(_ context.Context, msg *pubsub.Message) error {
		sa, err := trust.VerifyAck(cluster, msg.Data)
		if err != nil {
			return err
		}
		return sameAuthor("ack", peer.ID(sa.Ack.Peer), msg)
	}
}

func sameAuthor(what string, signer peer.ID, msg *pubsub.Message) error {
	if signer != msg.GetFrom() {
		return fmt.Errorf("%s of %s published by %s: %w", what, signer, msg.GetFrom(), trust.ErrSignerMismatch)
	}
	return nil
}
