package curator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/records"
	"github.com/pinfold/pinfold/store"
)

func (d *Daemon) readOffers(ctx context.Context) error {
	sub, err := d.offers.Subscribe()
	if err != nil {
		return err
	}
	defer sub.Close()
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return ctx.Err()
		}
		so, err := records.VerifiedOffer(d.rules.Cluster, m)
		if err != nil {
			continue
		}
		held := func() int64 { return d.ackTab.heldBy(peer.ID(so.Offer.Peer)) }
		changed, err := d.members.Offer(ctx, so.Offer, held, d.now())
		if errors.Is(err, ErrOfferRefused) {
			d.offerRefused(m.ReceivedFrom, err)
			continue
		} else if err != nil {
			return err
		}
		if changed {
			d.log.Info("member changed", "peer", peer.ID(so.Offer.Peer), "nickname", so.Offer.Nickname, "capacity", so.Offer.Capacity)
			d.poke()
		}
	}
}

func (d *Daemon) readAcks(ctx context.Context) error {
	sub, err := d.acks.Subscribe()
	if err != nil {
		return err
	}
	defer sub.Close()
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return ctx.Err()
		}
		batch, err := d.book.VerifiedBatch(m)
		if err != nil {
			continue
		}
		accepted := 0
		for i, sa := range batch.Acks {
			// Accept again: between validation and delivery another copy
			// of the ACK, or a newer one, may have been accepted.
			if d.book.Accept(sa.Ack, m.ReceivedFrom) != nil {
				continue
			}
			if err := d.pending.add(ctx, sa, batch.Raw[i]); err != nil {
				return err
			}
			if err := d.ackTab.add(ctx, sa, batch.Raw[i]); err != nil {
				return err
			}
			d.recent.addAck(ReceivedAck{Time: d.now().UTC(), Peer: peer.ID(sa.Ack.Peer).String(), Shard: sa.Ack.Shard,
				State: sa.Ack.State, Seq: sa.Ack.Seq, Bytes: sa.Ack.Bytes})
			accepted++
		}
		if accepted > 0 {
			d.poke()
		}
	}
}

// followWindow keeps the recent heads ACKs are checked against.
func (d *Daemon) followWindow(ctx context.Context) error {
	return d.window.Follow(ctx, d.heads, dag.NewStore(store.Network{BS: d.node.BlockService()}), d.log.With("subsystem", "acks"))
}

// followChain feeds the logs of verified heads to the ledger.
func (d *Daemon) followChain(ctx context.Context) error {
	return d.chain.Follow(ctx, d.heads, dag.NewStore(store.Network{BS: d.node.BlockService()}))
}

// offerRefused counts and logs an offer outside the pledge policy.
func (d *Daemon) offerRefused(from peer.ID, err error) {
	d.refusedMu.Lock()
	if d.refusedOffers == nil {
		d.refusedOffers = map[string]uint64{}
	}
	reason := headsync.Reason(err)
	d.refusedOffers[reason]++
	n := d.refusedOffers[reason]
	d.refusedMu.Unlock()
	if n&(n-1) == 0 {
		d.log.Warn("offer refused", "peer", from, "count", n, "err", err)
	}
}

// ackLog holds the signed ACKs and releases received since the newest
// head this curator built, persisted so a restart loses none. The newest
// record per (peer, shard) wins.
type ackLog struct {
	mu      sync.Mutex
	d       ds.Datastore
	pending map[string][]byte // key -> SignedAck block bytes
}

var (
	pendingPfx      = ds.NewKey("/pinfold/curator/pending")
	pendingAuditPfx = ds.NewKey("/pinfold/curator/pending-audits")
)

func ackKey(a dag.Ack) string {
	return pendingPfx.ChildString(peer.ID(a.Peer).String()).ChildString(strconv.FormatInt(a.Shard, 10)).String()
}

func auditKeyOf(a dag.Audit) string {
	return pendingAuditPfx.ChildString(peer.ID(a.Holder).String()).ChildString(strconv.FormatInt(a.Shard, 10)).String()
}

func openAckLog(ctx context.Context, d ds.Datastore) (*ackLog, error) {
	l := &ackLog{d: d, pending: map[string][]byte{}}
	for _, pfx := range []ds.Key{pendingPfx, pendingAuditPfx} {
		res, err := d.Query(ctx, query.Query{Prefix: pfx.String()})
		if err != nil {
			return nil, fmt.Errorf("load pending log: %w", err)
		}
		for r := range res.Next() {
			if r.Error != nil {
				res.Close()
				return nil, fmt.Errorf("load pending log: %w", r.Error)
			}
			l.pending[r.Key] = r.Value
		}
		res.Close()
	}
	return l, nil
}

// addAudit puts a signed audit result in the log of the next head; a
// newer result of the same copy replaces it.
func (l *ackLog) addAudit(ctx context.Context, sa dag.SignedAudit, data []byte) error {
	key := auditKeyOf(sa.Audit)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.d.Put(ctx, ds.NewKey(key), data); err != nil {
		return fmt.Errorf("store audit: %w", err)
	}
	l.pending[key] = data
	return nil
}

func (l *ackLog) add(ctx context.Context, sa dag.SignedAck, data []byte) error {
	key := ackKey(sa.Ack)
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.pending[key]; ok {
		if prev, err := dag.DecodeSignedAck(old); err == nil && prev.Ack.Time >= sa.Ack.Time {
			return nil // not newer
		}
	}
	if err := l.d.Put(ctx, ds.NewKey(key), data); err != nil {
		return fmt.Errorf("store ack: %w", err)
	}
	l.pending[key] = data
	return nil
}

// snapshot returns the pending entries, sorted by their block bytes so the
// log of a head does not depend on arrival order.
func (l *ackLog) snapshot() (entries []dag.LogEntry, keys map[string][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys = make(map[string][]byte, len(l.pending))
	raws := make([][]byte, 0, len(l.pending))
	for k, v := range l.pending {
		keys[k] = v
		raws = append(raws, v)
	}
	sort.Slice(raws, func(i, j int) bool { return bytes.Compare(raws[i], raws[j]) < 0 })
	for _, raw := range raws {
		if sa, err := dag.DecodeSignedAck(raw); err == nil {
			entries = append(entries, dag.LogEntry{Ack: &sa})
		} else if sa, err := dag.DecodeSignedAudit(raw); err == nil {
			entries = append(entries, dag.LogEntry{Audit: &sa})
		} // else: verified or signed before it was stored; cannot happen
	}
	return entries, keys
}

// done drops the entries of a snapshot now recorded in a head, unless a
// newer record replaced them meanwhile.
func (l *ackLog) done(ctx context.Context, keys map[string][]byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, v := range keys {
		if cur, ok := l.pending[k]; ok && bytes.Equal(cur, v) {
			if err := l.d.Delete(ctx, ds.NewKey(k)); err != nil {
				return fmt.Errorf("clear pending log: %w", err)
			}
			delete(l.pending, k)
		}
	}
	return nil
}

func (l *ackLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
}
