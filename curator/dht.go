package curator

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// DHT publishing timings.
const (
	// dhtPutTimeout bounds one put: a lookup of the closest peers, then
	// a store at each (kad-dht allows 30 s per peer).
	dhtPutTimeout = time.Minute
	// dhtRetryMin and dhtRetryMax bound the backoff after a failed put
	// (no DHT peers yet, a lookup timed out).
	dhtRetryMin = 10 * time.Second
	dhtRetryMax = 10 * time.Minute
	// dhtRepublishMax caps the time between two puts of an unchanged
	// record: DHT servers drop records after 36 hours (kad-dht's
	// MaxRecordAge) even while they are valid.
	dhtRepublishMax = 12 * time.Hour
)

// dhtState is what dhtLoop last did, for the status.
type dhtState struct {
	mu   sync.Mutex
	info DHTInfo
}

func (s *dhtState) get() DHTInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

func (s *dhtState) update(f func(*DHTInfo)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.info)
}

// dhtLoop publishes the cluster's IPNS record to the DHT whenever the
// record changes (every head and every refresh re-sign it), again every
// RecordValidity/4 (at most dhtRepublishMax) while it does not, and
// after a failed put with backoff. A failed put is logged and never
// stops publishing: the record still goes out over pubsub, the head
// protocol and the record file. It returns at once when the DHT is off,
// otherwise when ctx ends.
func (d *Daemon) dhtLoop(ctx context.Context) error {
	if !d.node.DHTEnabled() {
		return nil
	}
	republish := min(time.Duration(d.l.Config.RecordValidity)/4, dhtRepublishMax)
	var (
		last    []byte // the record last put without error
		backoff time.Duration
	)
	timer := time.NewTimer(republish)
	defer timer.Stop()
	due := false // the timer fired: put even an unchanged record
	for {
		changed := d.heads.Changed()
		if rec, ok := d.heads.Record(); ok && (due || !bytes.Equal(rec.Raw, last)) {
			due = false
			pctx, cancel := context.WithTimeout(ctx, dhtPutTimeout)
			err := d.node.PutRecord(pctx, d.name, rec.Raw)
			cancel()
			next := republish
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				backoff = min(max(2*backoff, dhtRetryMin), dhtRetryMax)
				next = backoff
				last = nil
				d.log.Warn("publish record to DHT", "seq", rec.Seq, "retry_in", next, "dht_peers", d.node.DHTPeers(), "err", err)
				d.dht.update(func(i *DHTInfo) { i.LastError, i.Next = err.Error(), d.now().Add(next) })
			default:
				backoff = 0
				last = rec.Raw
				d.log.Info("published record to DHT", "seq", rec.Seq, "head", rec.Head, "dht_peers", d.node.DHTPeers())
				now := d.now()
				d.dht.update(func(i *DHTInfo) {
					i.LastPut, i.LastSeq, i.LastError, i.Next = now, rec.Seq, "", now.Add(next)
				})
			}
			timer.Reset(next)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-timer.C:
			due = true
		}
	}
}
