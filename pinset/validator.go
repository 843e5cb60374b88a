package pinset

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	pb "github.com/ipfs/go-ds-crdt/pb"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"

	"github.com/pinfold/pinfold/p2p"
)

// IsHeadCID reports whether c can name a go-ds-crdt block: CIDv1, dag-pb,
// sha2-256 with a 32-byte digest. go-ds-crdt makes exactly these; anything
// else on the CRDT topic or in a fed head is refused, which also keeps
// identity multihashes (blocks that carry their own bytes and need no
// fetch) out of the CRDT.
func IsHeadCID(c cid.Cid) bool {
	if !c.Defined() || c.Version() != 1 || c.Type() != cid.DagProtobuf {
		return false
	}
	p := c.Prefix()
	return p.MhType == multihash.SHA2_256 && p.MhLength == 32
}

// decodeBroadcast strictly decodes a go-ds-crdt broadcast: a CRDTBroadcast
// protobuf with 1..maxHeads heads, each a head CID, no unknown fields and
// no legacy bare-CID form.
func decodeBroadcast(data []byte, maxBytes, maxHeads int) ([]cid.Cid, error) {
	if len(data) > maxBytes {
		return nil, fmt.Errorf("%w: broadcast is %d bytes, limit %d", ErrMalformed, len(data), maxBytes)
	}
	var msg pb.CRDTBroadcast
	if err := (proto.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(data, &msg); err != nil {
		return nil, fmt.Errorf("%w: broadcast: %v", ErrMalformed, err)
	}
	if len(msg.ProtoReflect().GetUnknown()) > 0 {
		return nil, fmt.Errorf("%w: broadcast has unknown fields", ErrMalformed)
	}
	if len(msg.Heads) == 0 || len(msg.Heads) > maxHeads {
		return nil, fmt.Errorf("%w: broadcast has %d heads, want 1 to %d", ErrMalformed, len(msg.Heads), maxHeads)
	}
	heads := make([]cid.Cid, 0, len(msg.Heads))
	for _, h := range msg.Heads {
		if len(h.ProtoReflect().GetUnknown()) > 0 {
			return nil, fmt.Errorf("%w: broadcast head has unknown fields", ErrMalformed)
		}
		c, err := cid.Cast(h.GetCid())
		if err != nil {
			return nil, fmt.Errorf("%w: broadcast head: %v", ErrMalformed, err)
		}
		if !IsHeadCID(c) {
			return nil, fmt.Errorf("%w: broadcast head %s is not a CIDv1 dag-pb sha2-256", ErrMalformed, c)
		}
		heads = append(heads, c)
	}
	return heads, nil
}

// encodeBroadcast is the inverse of decodeBroadcast.
func encodeBroadcast(heads []cid.Cid) ([]byte, error) {
	msg := pb.CRDTBroadcast{Heads: make([]*pb.Head, len(heads))}
	for i, h := range heads {
		msg.Heads[i] = &pb.Head{Cid: h.Bytes()}
	}
	return proto.Marshal(&msg)
}

// Validator is the pubsub validator of a pinset's CRDT topic. It accepts a
// message only if its signed author (GetFrom, not the peer that forwarded
// it) is trusted and its payload is a well-formed broadcast within limits.
// Messages of untrusted authors are ignored (dropped, not forwarded, no
// penalty); malformed ones are rejected (dropped and held against the
// peer that sent them: every replica checks the same rules).
// Register it before anything subscribes to the topic (see JoinTopic): a
// message that arrives before registration is delivered unvalidated.
// The pubsub router must verify signatures (the default StrictSign policy),
// or GetFrom means nothing.
type Validator struct {
	trusted   func(peer.ID) bool
	maxBytes  int
	maxHeads  int
	accepted  atomic.Uint64
	untrusted atomic.Uint64
	malformed atomic.Uint64
}

// NewValidator returns a validator that trusts authors for which trusted
// returns true. trusted is called for every message and may change its
// answer over time (the trust set is part of the signed state); it must be
// safe for concurrent use and must not block.
func NewValidator(cfg Config, trusted func(peer.ID) bool) *Validator {
	return &Validator{trusted: trusted, maxBytes: cfg.MaxBroadcastBytes, maxHeads: cfg.MaxBroadcastHeads}
}

// Validate is a pubsub.ValidatorEx. It never blocks.
func (v *Validator) Validate(ctx context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	switch err := v.check(msg); {
	case err == nil:
		return pubsub.ValidationAccept
	case errors.Is(err, ErrUntrustedAuthor):
		return pubsub.ValidationIgnore
	default:
		return pubsub.ValidationReject
	}
}

// Check is Validate as a p2p.Validator, for a topic joined through the
// node (p2p.Node.JoinRawTopic), which counts and logs every refusal by
// reason and peer: an untrusted author is ignored (p2p.Ignore), a
// malformed broadcast rejected.
func (v *Validator) Check(_ context.Context, msg *pubsub.Message) error {
	err := v.check(msg)
	if errors.Is(err, ErrUntrustedAuthor) {
		return p2p.Ignore(err)
	}
	return err
}

// check decides one message and counts the decision.
func (v *Validator) check(msg *pubsub.Message) error {
	if msg == nil || msg.Message == nil {
		v.malformed.Add(1)
		return fmt.Errorf("%w: empty message", ErrMalformed)
	}
	if len(msg.GetSignature()) == 0 || v.trusted == nil || !v.trusted(msg.GetFrom()) {
		// Ignore, not Reject: an honest peer whose trust set is a head
		// ahead of ours may forward a new curator's message, and Reject
		// would count against it in gossipsub's peer score.
		v.untrusted.Add(1)
		return fmt.Errorf("broadcast by %s: %w", msg.GetFrom(), ErrUntrustedAuthor)
	}
	if _, err := decodeBroadcast(msg.GetData(), v.maxBytes, v.maxHeads); err != nil {
		v.malformed.Add(1)
		return err
	}
	v.accepted.Add(1)
	return nil
}

// ValidatorStats counts a validator's decisions since it was made.
type ValidatorStats struct {
	Accepted  uint64
	Untrusted uint64 // author not in the trust set, or unsigned
	Malformed uint64
}

// Stats returns the counts so far.
func (v *Validator) Stats() ValidatorStats {
	return ValidatorStats{Accepted: v.accepted.Load(), Untrusted: v.untrusted.Load(), Malformed: v.malformed.Load()}
}

// JoinTopic registers v on topic name and then joins it, in that order.
// The caller owns the returned topic (Close it after closing the Set).
func JoinTopic(ps *pubsub.PubSub, name string, v *Validator) (*pubsub.Topic, error) {
	if err := ps.RegisterTopicValidator(name, v.Validate); err != nil {
		return nil, fmt.Errorf("register validator on %s: %w", name, err)
	}
	t, err := ps.Join(name)
	if err != nil {
		_ = ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("join %s: %w", name, err)
	}
	return t, nil
}
