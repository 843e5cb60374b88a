package curator

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/assign"
	"github.com/pinfold/pinfold/audit"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/ledger"
	"github.com/pinfold/pinfold/trust"
)

// auditKey names one holder's copy of one shard.
type auditKey struct {
	holder peer.ID
	shard  int64
}

// auditRun is an audit in progress: its challenge is kept, and asked
// again, until the holder answers or the grace period ends, so a holder
// cannot escape a challenge it cannot answer by staying silent.
type auditRun struct {
	ch      audit.Challenge
	seq     int64     // seq of the challenge's head
	since   int64     // the commitment audited (ledger.Holding.Since)
	started time.Time // first attempt
	next    time.Time // next attempt
	tries   int
	lastErr error
	active  bool // an attempt is under way
}

// auditor schedules and runs the curator's audits. Its state is in
// memory: after a restart, copies are audited again from the chain's
// record (a copy whose newest audit is older than the interval is due).
type auditor struct {
	mu   sync.Mutex
	runs map[auditKey]*auditRun
	done map[auditKey]auditDone // results signed, maybe not in a head yet
	busy map[peer.ID]bool       // holders with an attempt under way: one at a time each
	// noChallenge holds the copies no challenge could be built for (their
	// ACK is of other content than the shard holds now), with the digest
	// ACKed and when to try again: until then, or until the holder ACKs
	// other content, they are not listed again at every tick.
	noChallenge map[auditKey]skipped
	// ended holds the copies whose attempt ended since the loop last
	// looked: they go back into the queue at their next due time.
	ended []auditKey
	sem   chan struct{}
	wake  chan struct{} // an attempt ended: more may start
	wg    sync.WaitGroup

	// queue and what it was built from, and the due copies waiting for
	// their holder's attempt to end: owned by the audit loop.
	queue       auditQueue
	builtLedger cid.Cid
	builtPlan   *allocation.Plan
	parked      map[peer.ID][]auditKey

	stats auditStats
}

// skipped is a copy no challenge could be built for.
type skipped struct {
	digest []byte
	until  time.Time
}

// noChallengeRetry is how long a copy whose ACK is of other content than
// its shard holds waits before its challenge is built again: the shard's
// listing (a badger iterator) was built at every tick for every such
// copy, most of a quiet curator's CPU with 100 members whose ACKs named
// content the shards no longer held.
const noChallengeRetry = 10 * time.Second

// auditStats are the counters shown in status.
type auditStats struct {
	Passed   uint64 `json:"passed"`
	Failed   uint64 `json:"failed"`
	Retried  uint64 `json:"retried"` // attempts that got no answer and were retried
	Running  int    `json:"running"` // audits waiting for an answer
	BytesIn  int64  `json:"bytes_in"`
	Attempts uint64 `json:"attempts"`
}

// auditDone is the newest result this curator signed for a copy.
type auditDone struct {
	at    time.Time
	since int64 // the commitment it audited
}

func newAuditor(concurrency int) *auditor {
	return &auditor{runs: map[auditKey]*auditRun{}, done: map[auditKey]auditDone{}, busy: map[peer.ID]bool{}, noChallenge: map[auditKey]skipped{}, parked: map[peer.ID][]auditKey{},
		sem: make(chan struct{}, max(concurrency, 1)), wake: make(chan struct{}, 1)}
}

// auditLoop runs audits until ctx ends; it waits for those in flight.
func (d *Daemon) auditLoop(ctx context.Context) error {
	a := d.audits
	defer a.wg.Wait()
	tick := time.NewTicker(auditTick(time.Duration(d.l.Config.Audit.Interval)))
	defer tick.Stop()
	for {
		d.startDueAudits(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-a.wake:
		case <-d.chain.Changed():
		}
	}
}

// auditTick is how often the schedule is looked at: often enough for the
// retries and for short test intervals, never busy.
func auditTick(interval time.Duration) time.Duration {
	return min(max(interval/10, 100*time.Millisecond), time.Second)
}

// startDueAudits starts an attempt for every copy that is due: a stored
// ACK a signed head records, of the shard's present content, whose newest
// audit is older than the ACK or than the interval, and every retry whose
// time has come. Copies are taken from the queue in order of their due
// time; the queue is rebuilt when a head changed the ledger or the plan.
func (d *Daemon) startDueAudits(ctx context.Context) {
	v, ok := d.heads.Newest()
	if !ok {
		return
	}
	plan, _, err := d.plan(ctx)
	if err != nil {
		return
	}
	a := d.audits
	now := d.now()
	if applied := d.chain.Applied(); !applied.Equals(a.builtLedger) || plan != a.builtPlan {
		d.rebuildAuditQueue(plan, now)
		a.builtLedger, a.builtPlan = applied, plan
	}
	a.mu.Lock()
	ended := a.ended
	a.ended = nil
	a.mu.Unlock()
	for _, k := range ended {
		for _, w := range a.parked[k.holder] { // the holder is free again
			a.queue.push(w, now)
		}
		delete(a.parked, k.holder)
		if h, ok := d.holding(k); ok {
			a.mu.Lock()
			due, queue := a.dueAt(h, k, d.auditInterval())
			a.mu.Unlock()
			if queue {
				a.queue.push(k, due)
			}
		}
	}
	for {
		k, ok := a.queue.popDue(now)
		if !ok {
			return
		}
		h, held := d.holding(k)
		if !held || h.State != ledger.Stored || !d.auditable(plan, k) {
			a.mu.Lock()
			if run, ok := a.runs[k]; ok && !run.active {
				delete(a.runs, k) // released or moved: nothing left to ask
			}
			a.mu.Unlock()
			continue // queued again if a head brings it back
		}
		a.mu.Lock()
		if a.busy[k.holder] { // holders answer one challenge at a time
			a.mu.Unlock()
			a.parked[k.holder] = append(a.parked[k.holder], k) // queued again when its attempt ends
			continue
		}
		due, queue := a.dueAt(h, k, d.auditInterval())
		run, running := a.runs[k]
		a.mu.Unlock()
		if !queue {
			continue // under way: its end queues it again
		}
		if due.After(now) {
			a.queue.push(k, due)
			continue
		}
		if !running {
			a.mu.Lock()
			sk, skip := a.noChallenge[k]
			skip = skip && bytes.Equal(sk.digest, h.Digest) && now.Before(sk.until)
			a.mu.Unlock()
			if skip {
				a.queue.push(k, sk.until)
				continue
			}
			ch, err := d.newChallenge(ctx, v, h)
			if err != nil {
				d.log.Debug("no audit", "holder", k.holder, "shard", k.shard, "err", err)
				a.mu.Lock()
				a.noChallenge[k] = skipped{digest: slices.Clone(h.Digest), until: now.Add(noChallengeRetry)}
				a.mu.Unlock()
				a.queue.push(k, now.Add(noChallengeRetry))
				continue
			}
			run = &auditRun{ch: ch, seq: v.Head.Seq, since: h.Since, started: now, next: now}
			a.mu.Lock()
			delete(a.noChallenge, k)
			a.runs[k] = run
			a.mu.Unlock()
		}
		select {
		case a.sem <- struct{}{}:
		default:
			a.queue.push(k, now)
			return // at the concurrency limit: an attempt's end wakes the loop
		}
		a.mu.Lock()
		run.active = true
		a.busy[k.holder] = true
		run.tries++
		a.stats.Attempts++
		a.mu.Unlock()
		a.wg.Add(1)
		go func() { // owned by auditLoop, which waits for it
			defer a.wg.Done()
			d.attempt(ctx, k, run)
			a.mu.Lock()
			delete(a.busy, k.holder)
			a.ended = append(a.ended, k)
			a.mu.Unlock()
			<-a.sem
			select {
			case a.wake <- struct{}{}:
			default:
			}
		}()
	}
}

// rebuildAuditQueue queues every stored, auditable copy of the ledger at
// its due time, drops the retries of copies that are gone, and forgets
// skipped copies whose wait is over.
func (d *Daemon) rebuildAuditQueue(plan *allocation.Plan, now time.Time) {
	var holdings []ledger.Holding
	d.chain.Read(func(l *ledger.Ledger) {
		l.Each(func(h ledger.Holding) {
			if h.State == ledger.Stored {
				holdings = append(holdings, h)
			}
		})
	})
	a := d.audits
	a.queue.reset()
	clear(a.parked)
	live := make(map[auditKey]struct{}, len(holdings))
	interval := d.auditInterval()
	for _, h := range holdings {
		k := auditKey{peer.ID(h.Peer), h.Shard}
		if !d.auditable(plan, k) {
			continue
		}
		live[k] = struct{}{}
		a.mu.Lock()
		due, queue := a.dueAt(h, k, interval)
		a.mu.Unlock()
		if queue {
			a.queue.push(k, due)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, run := range a.runs {
		if _, ok := live[k]; !ok && !run.active {
			delete(a.runs, k) // released or moved: nothing left to ask
		}
	}
	for k, sk := range a.noChallenge {
		if !now.Before(sk.until) {
			delete(a.noChallenge, k) // due again; copies gone meanwhile leave no entry behind
		}
	}
}

// dueAt is when h's copy is next due: the retry time of an audit in
// progress; at once for a commitment no audit covers yet; else the newest
// audit (recorded, or signed here and not recorded yet) plus the
// interval, jittered. queue is false while an attempt is under way (its
// end queues the copy again). The caller holds a.mu.
func (a *auditor) dueAt(h ledger.Holding, k auditKey, interval time.Duration) (due time.Time, queue bool) {
	if run, ok := a.runs[k]; ok {
		return run.next, !run.active
	}
	last := time.UnixMilli(h.AuditTime)
	done, signed := a.done[k]
	if signed && done.at.After(last) {
		last = done.at
	}
	if h.Audited <= h.Since && (!signed || done.since != h.Since) {
		return time.Time{}, true // a commitment no audit covers yet is audited at once
	}
	return last.Add(jittered(interval, h.Peer, h.Shard, last)), true
}

// holding returns the ledger's record of k's copy.
func (d *Daemon) holding(k auditKey) (h ledger.Holding, ok bool) {
	d.chain.Read(func(l *ledger.Ledger) {
		if p := l.Holding(string(k.holder), k.shard); p != nil {
			h, ok = *p, true
		}
	})
	return h, ok
}

func (d *Daemon) auditInterval() time.Duration { return time.Duration(d.l.Config.Audit.Interval) }

// auditable reports whether k's copy is one to audit now: its holder is
// assigned the shard by the newest plan and has not sent a release of it
// since. A holder gives a copy up with a signed release once new holders
// are proven; its blocks may be gone before a head records the release,
// and auditing them then would fail an honest member.
func (d *Daemon) auditable(plan *allocation.Plan, k auditKey) bool {
	holders, ok := plan.Holders(k.shard)
	if !ok || !slices.ContainsFunc(holders, func(h []byte) bool { return peer.ID(h) == k.holder }) {
		return false
	}
	a, ok := d.ackTab.get(k.shard, k.holder)
	return !ok || a.State != "released"
}

// jittered spreads audits of one interval over ±10 %, by a hash of the
// copy and of its last audit time, so they do not come in bursts.
func jittered(interval time.Duration, holder string, shard int64, last time.Time) time.Duration {
	spread := int64(interval / 5)
	if spread <= 0 {
		return interval
	}
	h := fnv64(holder, uint64(shard), uint64(last.UnixMilli()))
	return interval - interval/10 + time.Duration(int64(h%uint64(spread)))
}

// fnv64 is FNV-1a over s and the little-endian bytes of each word.
func fnv64(s string, words ...uint64) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	for _, w := range words {
		for range 8 {
			h ^= w & 0xff
			h *= 1099511628211
			w >>= 8
		}
	}
	return h
}

// newChallenge builds a challenge of h's copy against the shard's present
// pins. A copy of other content (the shard changed since the ACK) is not
// audited: its holder must ACK the new content first.
func (d *Daemon) newChallenge(ctx context.Context, v trust.Verified, h ledger.Holding) (audit.Challenge, error) {
	var pins []audit.PinRef
	var refs []assign.PinRef
	err := d.pins.ListShard(ctx, h.Shard, func(p pinsetPin) error {
		pins = append(pins, audit.PinRef{CID: p.CID, Size: p.Size})
		refs = append(refs, assign.PinRef{CID: p.CID.Bytes(), Size: p.Size})
		return nil
	})
	if err != nil {
		return audit.Challenge{}, err
	}
	digest := assign.Digest(refs)
	if string(digest) != string(h.Digest) {
		return audit.Challenge{}, errors.New("the copy's ACK is of other content than the shard holds now")
	}
	return audit.NewChallenge(d.rules.Cluster, h.Shard, v.CID, digest, pins, d.l.Config.Audit.Samples, rand.Reader)
}

// attempt asks the holder once. A verified answer, right or wrong, ends
// the audit with a signed result; no answer is retried with the same
// challenge, with backoff, until the grace period ends.
func (d *Daemon) attempt(ctx context.Context, k auditKey, run *auditRun) {
	resp, err := d.auditClient.Challenge(ctx, k.holder, run.ch)
	samples := 0
	if err == nil {
		samples, err = audit.Verify(run.ch, resp)
	}
	now := d.now()
	// The copy may have been handed over while the audit ran: a failure
	// then says nothing about the holder.
	stillHeld := true
	if err != nil {
		plan, _, perr := d.plan(ctx)
		stillHeld = perr == nil && d.auditable(plan, k)
	}
	a := d.audits
	a.mu.Lock()
	run.active = false
	if err == nil {
		a.stats.BytesIn += resp.Size()
	}
	if err != nil && !audit.Failed(err) {
		if ctx.Err() != nil {
			a.mu.Unlock()
			return
		}
		grace := time.Duration(d.l.Config.Audit.Grace)
		if now.Sub(run.started) < grace {
			run.lastErr = err
			run.next = now.Add(min(5*time.Second<<min(run.tries-1, 10), grace/4+time.Second))
			a.stats.Retried++
			a.mu.Unlock()
			d.log.Info("audit got no answer; will ask again", "holder", k.holder, "shard", k.shard, "tries", run.tries, "err", err)
			return
		}
		err = fmt.Errorf("no answer within the grace period of %s (%d tries): %w", grace, run.tries, err)
	}
	delete(a.runs, k)
	a.done[k] = auditDone{at: now, since: run.since}
	if err != nil && !stillHeld {
		a.mu.Unlock()
		d.log.Info("audit dropped: the copy was released or moved while it ran", "holder", k.holder, "shard", k.shard, "err", err)
		return
	}
	if err == nil {
		a.stats.Passed++
	} else {
		a.stats.Failed++
	}
	a.mu.Unlock()
	if err := d.recordAudit(ctx, k, run, samples, err, now); err != nil && ctx.Err() == nil {
		d.log.Error("record audit", "holder", k.holder, "shard", k.shard, "err", err)
	}
}

// recordAudit signs the result and puts it in the log of the next head.
func (d *Daemon) recordAudit(ctx context.Context, k auditKey, run *auditRun, samples int, result error, now time.Time) error {
	rec := run.ch.Record(d.id, k.holder, run.seq, samples, result, now)
	sa, err := trust.SignAudit(d.l.CuratorKey, rec)
	if err != nil {
		return err
	}
	raw, err := dag.EncodeSignedAudit(sa)
	if err != nil {
		return err
	}
	if err := d.pending.addAudit(ctx, sa, raw); err != nil {
		return err
	}
	if result != nil {
		d.log.Warn("audit failed", "holder", k.holder, "shard", k.shard, "err", result)
	} else {
		d.log.Info("audit passed", "holder", k.holder, "shard", k.shard, "samples", samples)
	}
	d.poke()
	return nil
}

// AuditStats returns the audit counters.
func (d *Daemon) AuditStats() auditStats {
	a := d.audits
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.Running = len(a.runs)
	return s
}
