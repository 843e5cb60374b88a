package records

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/trust"
)

// Book accepts ACKs: it checks each against the recent heads of its
// Window and the newest ACK it accepted per (member, shard), records the
// accepted ones as the new newest, and counts every refusal by reason.
// Curators and followers each keep one. Safe for concurrent use.
type Book struct {
	cluster peer.ID
	window  *Window
	log     *slog.Logger

	mu      sync.Mutex
	last    map[bookKey]Last
	refused map[string]uint64
}

type bookKey struct {
	peer  string
	shard int64
}

// NewBook returns a book checking ACKs for cluster against w.
func NewBook(cluster peer.ID, w *Window, log *slog.Logger) *Book {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Book{cluster: cluster, window: w, log: log, last: map[bookKey]Last{}, refused: map[string]uint64{}}
}

// Seed records a as accepted before (e.g. loaded from disk at start-up),
// if it is newer than what the book holds.
func (b *Book) Seed(a dag.Ack) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := bookKey{string(a.Peer), a.Shard}
	if l, ok := b.last[k]; ok && (a.Seq < l.Seq || (a.Seq == l.Seq && a.Time <= l.Time)) {
		return
	}
	b.last[k] = Last{Seq: a.Seq, Time: a.Time, State: a.State}
}

// Check reports whether a would be accepted now, changing nothing.
func (b *Book) Check(a dag.Ack) error {
	v, err := b.window.Lookup(a.Head, a.Seq)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return CheckAck(a, v, b.lastLocked(a))
}

func (b *Book) lastLocked(a dag.Ack) *Last {
	if l, ok := b.last[bookKey{string(a.Peer), a.Shard}]; ok {
		return &l
	}
	return nil
}

// Accept checks a and, if it is accepted, makes it the newest of its
// (member, shard). A refusal is counted and logged with from, the peer it
// came from.
func (b *Book) Accept(a dag.Ack, from peer.ID) error {
	v, err := b.window.Lookup(a.Head, a.Seq)
	if err == nil {
		b.mu.Lock()
		err = CheckAck(a, v, b.lastLocked(a))
		if err == nil {
			b.last[bookKey{string(a.Peer), a.Shard}] = Last{Seq: a.Seq, Time: a.Time, State: a.State}
		}
		b.mu.Unlock()
	}
	if err != nil {
		b.Refuse(from, err)
	}
	return err
}

// Refuse counts and logs a refused ACK or batch.
func (b *Book) Refuse(from peer.ID, err error) {
	reason := headsync.Reason(err)
	b.mu.Lock()
	b.refused[reason]++
	n := b.refused[reason]
	b.mu.Unlock()
	if n&(n-1) == 0 { // the first, then at powers of two: a flood logs a few lines
		b.log.Warn("ack refused", "peer", from, "reason", reason, "count", n, "err", err)
	}
}

// Refused returns the count of refusals by reason.
func (b *Book) Refused() map[string]uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.refused)
}

// hard reports whether a refusal shows the sender lied or is not one of
// us (reject the message), rather than that it knows another head than we
// do or repeats itself (ignore the ACK).
// A release of a shard its peer never held is soft too: it gives up
// nothing, whereas refusing its batch would hold back the other ACKs in it.
func hard(err error) bool {
	return !errors.Is(err, ErrUnknownHead) && !errors.Is(err, ErrStaleHead) && !errors.Is(err, ErrReplay) &&
		!errors.Is(err, ErrNotHolder)
}

// Batch is one verified batch of ACKs from one author.
type Batch struct {
	Acks []dag.SignedAck
	Raw  [][]byte // the SignedAck blocks, as signed
}

// VerifyBatch decodes an ACK batch and verifies every ACK in it for the
// book's cluster and for author, the gossipsub author of the message. A
// bad signature or an ACK of another peer fails the whole batch.
func (b *Book) VerifyBatch(data []byte, author peer.ID) (Batch, error) {
	raws, err := DecodeBatch(data)
	if err != nil {
		return Batch{}, err
	}
	out := Batch{Raw: raws, Acks: make([]dag.SignedAck, 0, len(raws))}
	for i, raw := range raws {
		sa, err := trust.VerifyAck(b.cluster, raw)
		if err != nil {
			return Batch{}, fmt.Errorf("ack batch[%d]: %w", i, err)
		}
		if err := sameAuthor("ack", peer.ID(sa.Ack.Peer), author); err != nil {
			return Batch{}, fmt.Errorf("ack batch[%d]: %w", i, err)
		}
		out.Acks = append(out.Acks, sa)
	}
	return out, nil
}

// AckValidator is the ACK topic's validator: a batch is relayed when it
// verifies, when no ACK in it could not be true (a non-member, a shard
// that does not exist or is not the author's), and when at least one ACK
// in it is new. A batch whose ACKs all name heads this node does not know,
// or are not newer than the ones it has, is ignored, not rejected.
func (b *Book) AckValidator() p2p.Validator {
	return func(_ context.Context, msg *pubsub.Message) error {
		batch, err := b.VerifyBatch(msg.Data, msg.GetFrom())
		if err != nil {
			return err
		}
		var soft error
		fresh := 0
		for i, sa := range batch.Acks {
			err := b.Check(sa.Ack)
			switch {
			case err == nil:
				fresh++
			case hard(err):
				return fmt.Errorf("ack batch[%d]: %w", i, err)
			default:
				soft = err
			}
		}
		if fresh == 0 {
			return p2p.Ignore(soft)
		}
		msg.ValidatorData = batch // readers take it from here (VerifiedBatch)
		return nil
	}
}

// VerifiedBatch returns the batch in msg, a message AckValidator
// accepted: the one the validator verified and kept with the message, so
// that a reader does not check every signature a second time; else (a
// message that did not pass through it) it verifies msg itself.
func (b *Book) VerifiedBatch(msg *pubsub.Message) (Batch, error) {
	if batch, ok := msg.ValidatorData.(Batch); ok {
		return batch, nil
	}
	return b.VerifyBatch(msg.Data, msg.GetFrom())
}

// Window returns the book's window of recent heads.
func (b *Book) Window() *Window { return b.window }

// HasHead reports whether head c is one an ACK may name now.
func (b *Book) HasHead(c cid.Cid) bool { return b.window.Has(c) }
