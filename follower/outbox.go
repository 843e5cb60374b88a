package follower

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/ledger"
	"github.com/pinfold/pinfold/records"
	"github.com/pinfold/pinfold/trust"
)

// Retry bounds of an ACK not yet recorded by a signed head. An ACK is
// sent again when the chain has applied a head signed ackLost after it
// was sent without recording it (the curator had a whole head to take it,
// so it was lost), at least ackRetryFirst after it was sent (doubling up
// to ackRetryMax). While such heads are verified but their logs not yet
// read, it waits for the chain; when no such head comes at all (the
// curator never received it, so it has nothing to publish), it is sent
// again ackRetrySilent after; and in any case after ackRetryMax. Times of
// heads, not their seqs, decide: a follower behind the curator names an
// old head, and the heads after it may have been built before the ACK
// left. Resending on a timer alone put each ACK into the chain two or
// three times whenever heads, or reading their logs, took longer.
const (
	ackRetryFirst  = 5 * time.Second
	ackLost        = 5 * time.Second
	ackRetrySilent = 30 * time.Second
	ackRetryMax    = 2 * time.Minute
)

// AckDue reports whether an ACK not recorded yet, sent at sent with
// backoff wait, is due again at now, when the newest verified head was
// signed at verified and the newest head whose log the chain applied at
// applied (zero: unknown).
func AckDue(now, sent, verified, applied time.Time, wait time.Duration) bool {
	lostBy := sent.Add(ackLost)
	switch since := now.Sub(sent); {
	case sent.IsZero():
		return true
	case since < wait:
		return false
	case !applied.Before(lostBy):
		return true // a head built well after it left does not record it
	case since >= ackRetryMax:
		return true // the chain is stuck: do not wait on it for ever
	case !verified.Before(lostBy):
		return false // such a head came; its log is still being read
	default:
		return since >= ackRetrySilent // no head came: it was not received
	}
}

// intent is an ACK the follower wants a signed head to record: it is
// signed afresh, naming the follower's current head, every time it is
// sent, until the chain records it (or a newer intent replaces it).
type intent struct {
	shard  int64
	state  string
	digest []byte
	bytes  int64
	queued time.Time // recorded ACKs signed at or after this count
	sent   time.Time // zero: not sent yet
	wait   time.Duration
	tries  int
}

// outbox holds the ACKs on their way into the chain, one per shard.
type outbox struct {
	mu   sync.Mutex
	want map[int64]*intent
	wake chan struct{}
}

func newOutbox() *outbox { return &outbox{want: map[int64]*intent{}, wake: make(chan struct{}, 1)} }

// queue asks for an ACK of shard in state; it replaces any earlier one.
func (o *outbox) queue(shard int64, state string, digest []byte, n int64, now time.Time) {
	o.mu.Lock()
	o.want[shard] = &intent{shard: shard, state: state, digest: slices.Clone(digest), bytes: n, queued: now, wait: ackRetryFirst}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// drop forgets any ACK of shard still to be sent.
func (o *outbox) drop(shard int64) {
	o.mu.Lock()
	delete(o.want, shard)
	o.mu.Unlock()
}

// pending returns how many ACKs wait for a head to record them.
func (o *outbox) pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.want)
}

// ackSender sends the outbox's ACKs in batches whenever a curator can
// hear them, and again with backoff until a signed head records them.
// It returns when ctx ends.
func (d *Daemon) ackSender(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		chainChanged := d.chain.Changed()
		if err := d.sendDue(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("send acks", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.out.wake:
		case <-chainChanged:
		case <-tick.C:
		}
	}
}

// sendDue drops the intents the chain recorded and sends those that are
// due, if a curator is subscribed to the ACK topic.
func (d *Daemon) sendDue(ctx context.Context) error {
	now := d.now()
	self := string(d.l.ID)
	o := d.out
	var due []intent
	o.mu.Lock()
	var verified time.Time
	if v, ok := d.heads.Newest(); ok {
		verified = time.UnixMilli(v.Head.Time)
	}
	applied := d.chain.AppliedSigned()
	d.chain.Read(func(l *ledger.Ledger) {
		for id, in := range o.want {
			h := l.Holding(self, id)
			if h != nil && h.State == in.state && bytes.Equal(h.Digest, in.digest) && h.AckTime >= in.queued.UnixMilli() {
				delete(o.want, id)
				continue
			}
			if AckDue(now, in.sent, verified, applied, in.wait) {
				due = append(due, *in)
			}
		}
	})
	o.mu.Unlock()
	if len(due) == 0 || !d.curatorListening() {
		return nil
	}
	d.shards.mu.Lock()
	head := d.shards.head
	d.shards.mu.Unlock()
	if head == nil {
		return nil
	}
	slices.SortFunc(due, func(a, b intent) int { return int(min(max(a.shard-b.shard, -1), 1)) })
	for chunk := range slices.Chunk(due, records.MaxBatch) {
		raws := make([][]byte, 0, len(chunk))
		var signed []dag.Ack
		for _, in := range chunk {
			a := dag.Ack{
				Version: dag.Version, Cluster: []byte(d.rules.Cluster), Peer: []byte(d.l.ID),
				Head: head.CID, Seq: head.Head.Seq, Shard: in.shard, Digest: in.digest, Bytes: in.bytes,
				State: in.state, Time: now.UnixMilli(),
			}
			sa, err := trust.SignAck(d.l.Key, a)
			if err != nil {
				return err
			}
			raw, err := dag.EncodeSignedAck(sa)
			if err != nil {
				return err
			}
			raws = append(raws, raw)
			signed = append(signed, a)
		}
		left, err := d.publishAcks(ctx, raws, chunk)
		if err != nil {
			return err
		}
		o.mu.Lock()
		for i, in := range chunk {
			if !left[i] {
				continue
			}
			if cur, ok := o.want[in.shard]; ok && cur.queued.Equal(in.queued) {
				cur.sent, cur.tries = now, cur.tries+1
				if cur.tries > 1 {
					cur.wait = min(cur.wait*2, ackRetryMax)
				}
			}
		}
		o.mu.Unlock()
		for i, a := range signed {
			if !left[i] {
				continue
			}
			d.noteAck(a) // our own ACK counts for us
			if a.State == "stored" {
				d.event("ack", fmt.Sprintf("stored shard %d at seq %d (%s)", a.Shard, a.Seq, humanize.IBytes(uint64(max(a.Bytes, 0)))))
			}
		}
	}
	return nil
}

// publishAcks publishes raws, the signed ACKs of chunk, as one batch, and
// reports which of them left. Our own validator checks a batch before it
// leaves; if it refuses the batch, each ACK is sent alone. One refused on
// its own as a lie by our own rules is dropped from the outbox with a
// warning, so it cannot hold back the others; one ignored (it names a
// head our window has not taken in yet, or repeats itself) did not leave
// and stays due: counting it as sent made it wait for a head recording
// it, which a quiet curator never publishes (30 s in CI).
func (d *Daemon) publishAcks(ctx context.Context, raws [][]byte, chunk []intent) ([]bool, error) {
	left := make([]bool, len(raws))
	data, err := records.EncodeBatch(raws)
	if err != nil {
		return nil, err
	}
	err = d.acks.Publish(ctx, data)
	var verr pubsub.ValidationError
	switch {
	case err == nil:
		for i := range left {
			left[i] = true
		}
		return left, nil
	case !errors.As(err, &verr):
		return nil, fmt.Errorf("send %d acks: %w", len(raws), err)
	}
	for i, raw := range raws {
		one, err := records.EncodeBatch([][]byte{raw})
		if err != nil {
			return nil, err
		}
		err = d.acks.Publish(ctx, one)
		switch {
		case err == nil:
			left[i] = true
		case !errors.As(err, &verr):
			return nil, fmt.Errorf("send ack of shard %d: %w", chunk[i].shard, err)
		case verr.Reason == pubsub.RejectValidationFailed: // a lie by our own rules: never true
			d.log.Warn("ack refused by our own validator; dropped", "shard", chunk[i].shard, "state", chunk[i].state, "err", err)
			d.out.drop(chunk[i].shard)
		default: // ignored (a head we do not know yet, a replay): sent again later
			d.log.Debug("ack not sent now", "shard", chunk[i].shard, "err", err)
		}
	}
	return left, nil
}

// curatorListening reports whether a curator of the newest head is
// subscribed to the ACK topic among the connected peers: only then can an
// ACK reach one.
func (d *Daemon) curatorListening() bool {
	for _, p := range d.acks.Peers() {
		if d.trusted(p) {
			return true
		}
	}
	return false
}
