package follower

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/assign"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/ledger"
	"github.com/pinfold/pinfold/p2p"
	"github.com/pinfold/pinfold/store"
	"github.com/pinfold/pinfold/trust"
)

// Shard states as a follower reports them.
const (
	ShardQueued    = "queued"    // assigned, not fetched yet
	ShardFetching  = "fetching"  // being fetched
	ShardStored    = "stored"    // every pin stored; ACK sent
	ShardReleasing = "releasing" // no longer assigned; kept until its new holders ACKed it
)

var shardsPfx = ds.NewKey("/pinfold/follower/shards")

// shardRecord is what a follower keeps on disk of a shard it stores (or
// is fetching): enough to release it even if its pins leave the pinset.
type shardRecord struct {
	ID     int64    `json:"id"`
	Pins   []string `json:"pins"`   // CIDs fetched for it
	Bytes  int64    `json:"bytes"`  // stored bytes of those pins' DAGs
	Blocks int64    `json:"blocks"` // stored blocks
	Digest []byte   `json:"digest"` // assign.Digest of the pins
	Stored bool     `json:"stored"` // every pin fetched completely
	// Declared is the sum of the pins' sizes as the pinset lists them (0
	// in records written before it was kept).
	Declared int64 `json:"declared,omitempty"`
	// Extra are pins kept for the shard beside Pins: being fetched for
	// its new content, or left from its previous content until the new
	// digest is ACKed. Releasing the shard releases them too.
	Extra []string `json:"extra,omitempty"`
}

// ShardStatus is one row of the follower's commitments.
type ShardStatus struct {
	ID       int64     `json:"id"`
	Bytes    int64     `json:"bytes"` // size in the signed shard list
	Pins     int64     `json:"pins"`
	State    string    `json:"state"`
	Fetched  int64     `json:"fetched_bytes"`
	Holders  int       `json:"holders"` // holders with a valid ACK, this follower included
	Target   int       `json:"target"`  // replication max
	Min      int       `json:"min"`
	AckedSeq int64     `json:"acked_seq"` // head seq of this follower's newest ACK; -1 before
	AckedAt  time.Time `json:"acked_at,omitzero"`
	// Digest is assign.Digest of the content this follower holds for the
	// shard (what its ACKs state); empty before anything is stored.
	Digest []byte `json:"digest,omitempty"`
	// Recorded: a signed head records this follower's ACK of the shard's
	// content. Proven: a signed head also records a passed audit of it
	// since. Audit is the newest audit of this copy in the chain ("pass",
	// "fail", "" for none yet), with its time and, for a failure, why.
	Recorded    bool      `json:"recorded"`
	Proven      bool      `json:"proven"`
	Audit       string    `json:"audit,omitempty"`
	AuditedAt   time.Time `json:"audited_at,omitzero"`
	AuditReason string    `json:"audit_reason,omitempty"`
	// Since is when the shard entered State; ErrorAt when Error was set
	// (both in this run of the daemon).
	Since   time.Time `json:"since,omitzero"`
	Error   string    `json:"error,omitempty"`
	ErrorAt time.Time `json:"error_at,omitzero"`
}

// enter puts the row in state at now; Since moves only when the state
// changes.
func (r *ShardStatus) enter(state string, now time.Time) {
	if r.State != state || r.Since.IsZero() {
		r.State, r.Since = state, now
	}
}

// fail records the row's last error at now (keeping ErrorAt while the
// error stays the same); an empty msg clears it.
func (r *ShardStatus) fail(msg string, now time.Time) {
	switch {
	case msg == "":
		r.Error, r.ErrorAt = "", time.Time{}
	case msg != r.Error || r.ErrorAt.IsZero():
		r.Error, r.ErrorAt = msg, now
	}
}

// ackInfo is the newest ACK seen from one peer for one shard.
type ackInfo struct {
	state  string
	digest []byte
	time   time.Time
	seq    int64
}

// shards is the follower's shard pipeline state. Its methods are safe for
// concurrent use.
type shards struct {
	mu      sync.Mutex
	head    *trust.Verified // head the current assignment comes from
	plan    *allocation.Plan
	mine    map[int64]bool // assigned to this follower by plan
	rows    map[int64]*ShardStatus
	records map[int64]*shardRecord
	acks    map[int64]map[peer.ID]ackInfo
	lastAck map[int64]time.Time
	// acked marks the stored shards ACKed since they were stored, their
	// content changed, or they were (again) assigned to this follower.
	// Others wait for the next heartbeat: a new head, members or
	// allocation never make a holder ACK again what it ACKed, since an
	// ACK states a digest, which they do not change.
	acked map[int64]bool
	// stale marks stored shards whose content in the pinset changed: they
	// are fetched again (the difference) and ACKed at the new digest.
	stale map[int64]bool
	// ackedDigest is the digest of each shard's newest stored ACK queued.
	ackedDigest map[int64][]byte
	// reason says why nothing is assigned, when nothing is, or why the
	// newest head's assignment cannot be computed.
	reason  string
	diskErr string
	wake    chan struct{}
	// held is poked when a shard is stored or released: the roots to
	// announce changed.
	held chan struct{}
}

func newShards() *shards {
	return &shards{
		mine: map[int64]bool{}, rows: map[int64]*ShardStatus{}, records: map[int64]*shardRecord{},
		acks: map[int64]map[peer.ID]ackInfo{}, lastAck: map[int64]time.Time{}, acked: map[int64]bool{},
		stale: map[int64]bool{}, ackedDigest: map[int64][]byte{},
		wake: make(chan struct{}, 1), held: make(chan struct{}, 1),
	}
}

func (s *shards) poke() { pokeChan(s.wake) }

// pokeChan wakes the reader of a one-slot channel without blocking.
func pokeChan(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func recordKey(id int64) ds.Key { return shardsPfx.ChildString(strconv.FormatInt(id, 10)) }

func (d *Daemon) loadShardRecords(ctx context.Context) error {
	res, err := d.store.Datastore.Query(ctx, query.Query{Prefix: shardsPfx.String()})
	if err != nil {
		return fmt.Errorf("load shards: %w", err)
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return fmt.Errorf("load shards: %w", r.Error)
		}
		var rec shardRecord
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			return fmt.Errorf("load shard %s: %w", r.Key, err)
		}
		d.shards.records[rec.ID] = &rec
	}
	return nil
}

func (d *Daemon) saveRecord(ctx context.Context, rec *shardRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := d.store.Datastore.Put(ctx, recordKey(rec.ID), b); err != nil {
		return fmt.Errorf("save shard %d: %w", rec.ID, err)
	}
	return d.store.Datastore.Sync(ctx, recordKey(rec.ID))
}

// shardLoop recomputes the assignment whenever the pinset catches up with
// a new head, sends ACKs (when a shard is stored or its content changes,
// when a new allocation gives it to this follower, and every
// AckInterval), and releases shards no longer assigned once enough new
// holders ACKed them.
func (d *Daemon) shardLoop(ctx context.Context) error {
	netDAG := dag.NewStore(store.Network{BS: d.node.BlockService()})
	tick := time.NewTicker(min(time.Duration(d.l.Config.AckInterval)/2, 10*time.Second))
	defer tick.Stop()
	var planned, failed, checked cid.Cid
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.caughtUpCh():
		case <-d.shards.wake:
		case <-tick.C:
		}
		v, ok := d.heads.Newest()
		if !ok || !d.isCaughtUp(v.CID) {
			continue
		}
		if !v.CID.Equals(planned) {
			if err := d.replan(ctx, netDAG, v); err != nil {
				d.planFailed(v, err, !v.CID.Equals(failed))
				failed = v.CID
				continue
			}
			planned = v.CID
			d.memberAddrs.poke() // the members to keep may have changed
			if !v.Head.Pinset.Equals(checked) {
				if err := d.checkContent(ctx); err != nil {
					d.log.Warn("check stored shards against the pinset", "err", err)
				} else {
					checked = v.Head.Pinset
				}
			}
			d.fetchWake()
		}
		if err := d.ackAndRelease(ctx); err != nil {
			d.log.Warn("acks", "err", err)
		}
	}
}

func (d *Daemon) replan(ctx context.Context, st *dag.Store, v trust.Verified) error {
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	plan, in, err := d.plans.Plan(pctx, st, v.CID, v.Head)
	if err != nil {
		return err
	}
	self := []byte(d.l.ID)
	mineIDs := plan.ShardsOf(self)
	s := d.shards
	s.mu.Lock()
	defer s.mu.Unlock()
	s.head, s.plan = &v, plan
	mine := make(map[int64]bool, len(mineIDs))
	for _, id := range mineIDs {
		mine[id] = true
		if !s.mine[id] {
			delete(s.acked, id) // newly ours: say so under this head at once
		}
	}
	s.mine = mine
	s.reason = ""
	if len(mineIDs) == 0 {
		s.reason = d.whyNothing(in, self)
	}
	rows := map[int64]*ShardStatus{}
	for i := range plan.Len() {
		sa := plan.Shard(i)
		_, kept := s.records[sa.ID]
		if !s.mine[sa.ID] && !kept {
			continue
		}
		row := &ShardStatus{ID: sa.ID, Bytes: sa.Bytes, Pins: sa.Pins, Target: sa.Max, Min: sa.Min, AckedSeq: -1}
		if old, ok := s.rows[sa.ID]; ok {
			row.AckedSeq, row.AckedAt, row.Fetched = old.AckedSeq, old.AckedAt, old.Fetched
			row.State, row.Since, row.Error, row.ErrorAt = old.State, old.Since, old.Error, old.ErrorAt
		}
		rows[sa.ID] = row
	}
	now := d.now()
	for id, row := range rows {
		rec, kept := s.records[id]
		switch {
		case !s.mine[id]:
			row.enter(ShardReleasing, now)
		case kept && rec.Stored && !s.stale[id]:
			row.enter(ShardStored, now)
			row.Fetched = rec.Bytes
		case kept && row.State == ShardFetching: // a fetch under way goes on
		default:
			row.enter(ShardQueued, now)
		}
	}
	for id := range s.records {
		if _, ok := rows[id]; !ok { // our shard left the pinset entirely
			row := &ShardStatus{ID: id, AckedSeq: -1}
			if old, ok := s.rows[id]; ok {
				row.State, row.Since = old.State, old.Since
			}
			row.enter(ShardReleasing, now)
			rows[id] = row
		}
	}
	s.rows = rows
	d.event("assignment", fmt.Sprintf("head seq %d: %s assigned", v.Head.Seq, plural(len(mineIDs), "shard")))
	return nil
}

// planFailed says in the status why the assignment of head v cannot be
// computed (the previous assignment, if any, stays), and logs it once per
// head.
func (d *Daemon) planFailed(v trust.Verified, err error, first bool) {
	msg := fmt.Sprintf("cannot compute this follower's shards from head seq %d: %v", v.Head.Seq, err)
	d.shards.mu.Lock()
	d.shards.reason = msg
	d.shards.mu.Unlock()
	if first {
		d.log.Warn("compute assignment", "head", v.CID, "seq", v.Head.Seq, "err", err)
		d.event("assignment", msg)
	}
}

// whyNothing explains an empty assignment.
func (d *Daemon) whyNothing(in assign.Inputs, self []byte) string {
	var me *dag.Member
	for i := range in.Members {
		if bytes.Equal(in.Members[i].Peer, self) {
			me = &in.Members[i]
		}
	}
	switch {
	case me == nil:
		return "not a member yet: waiting for a curator to admit this follower's offer"
	case len(in.Shards) == 0:
		return "the cluster has no shards yet"
	}
	smallest := in.Shards[0].Bytes
	for _, sh := range in.Shards {
		smallest = min(smallest, sh.Bytes)
	}
	if me.Capacity < smallest {
		return fmt.Sprintf("pledge of %d bytes is smaller than the smallest shard (%d bytes)", me.Capacity, smallest)
	}
	return "every shard already has its holders"
}

// ackAndRelease sends the ACKs that are due and releases what can be.
func (d *Daemon) ackAndRelease(ctx context.Context) error {
	s := d.shards
	now := d.now()
	interval := time.Duration(d.l.Config.AckInterval)
	type job struct {
		rec   shardRecord
		state string
	}
	var jobs []job
	s.mu.Lock()
	head, plan := s.head, s.plan
	for id, rec := range s.records {
		if !rec.Stored {
			if !s.mine[id] && plan != nil {
				jobs = append(jobs, job{*rec, "abandoned"}) // never ACKed: nothing to hand over
			}
			continue
		}
		if s.mine[id] {
			if s.stale[id] {
				continue // being fetched again: ACKed at its new digest once stored
			}
			if !s.acked[id] || now.Sub(s.lastAck[id]) >= interval {
				jobs = append(jobs, job{*rec, "stored"})
			}
			continue
		}
		// Not ours any more: release once enough holders of the new plan
		// hold proven copies of the same content.
		if plan == nil {
			continue
		}
		holders, exists := plan.Holders(id)
		if !exists || d.handedOver(plan, id, holders, rec.Digest) {
			jobs = append(jobs, job{*rec, "released"})
		}
	}
	s.mu.Unlock()
	if head == nil {
		return nil
	}
	var errs []error
	for _, j := range jobs {
		if j.state == "abandoned" {
			if err := d.release(ctx, j.rec); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if j.state == "released" {
			// A release is news only where the chain records our commitment.
			if d.chainRecordsStored(j.rec.ID) {
				d.out.queue(j.rec.ID, "released", j.rec.Digest, 0, now)
			} else {
				d.out.drop(j.rec.ID)
			}
			if err := d.release(ctx, j.rec); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		d.out.queue(j.rec.ID, "stored", j.rec.Digest, j.rec.Bytes, now)
		if len(j.rec.Extra) > 0 {
			d.fetchWake() // the fetch loop releases what the new content left out
		}
		s.mu.Lock()
		s.lastAck[j.rec.ID], s.acked[j.rec.ID] = now, true
		s.ackedDigest[j.rec.ID] = j.rec.Digest
		if row, ok := s.rows[j.rec.ID]; ok {
			row.AckedSeq, row.AckedAt = head.Head.Seq, now
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// chainRecordsStored reports whether a signed head records a stored ACK
// of this follower for shard id.
func (d *Daemon) chainRecordsStored(id int64) (ok bool) {
	d.chain.Read(func(l *ledger.Ledger) {
		h := l.Holding(string(d.l.ID), id)
		ok = h != nil && h.State == ledger.Stored
	})
	return ok
}

// handedOver reports whether shard id, no longer this follower's, has
// its minimum of holders in plan (this follower excluded) whose copy of
// digest is proven: a stored ACK recorded in a curator-signed head, and a
// passed audit of that content recorded in a later one. What peers say
// on the ACK topic never counts.
func (d *Daemon) handedOver(plan *allocation.Plan, id int64, holders [][]byte, digest []byte) bool {
	need := 0
	for i := range plan.Len() {
		if sa := plan.Shard(i); sa.ID == id {
			need = sa.Min
			break
		}
	}
	have := 0
	d.chain.Read(func(l *ledger.Ledger) {
		for _, h := range holders {
			if peer.ID(h) == d.l.ID {
				continue
			}
			if l.Proven(string(h), id, digest) {
				have++
			}
		}
	})
	return have >= need
}

// release drops a shard: its pins' blocks not shared with kept pins are
// deleted, and its record goes.
func (d *Daemon) release(ctx context.Context, rec shardRecord) error {
	var freed int64
	for _, c := range d.unheld(rec.ID, append(slices.Clone(rec.Pins), rec.Extra...)) {
		pc, err := cid.Decode(c)
		if err != nil {
			continue
		}
		n, err := d.fetcher.Release(ctx, pc)
		if err != nil {
			return fmt.Errorf("release shard %d: %w", rec.ID, err)
		}
		freed += n
	}
	if err := d.store.Datastore.Delete(ctx, recordKey(rec.ID)); err != nil {
		return fmt.Errorf("release shard %d: %w", rec.ID, err)
	}
	s := d.shards
	s.mu.Lock()
	delete(s.records, rec.ID)
	delete(s.rows, rec.ID)
	delete(s.lastAck, rec.ID)
	delete(s.acked, rec.ID)
	delete(s.ackedDigest, rec.ID)
	delete(s.stale, rec.ID)
	s.mu.Unlock()
	pokeChan(s.held)
	d.event("drop", fmt.Sprintf("shard %d released, %s freed", rec.ID, humanize.IBytes(uint64(max(freed, 0)))))
	return nil
}

// noteAck records the newest ACK of a peer for a shard.
func (d *Daemon) noteAck(a dag.Ack) {
	s := d.shards
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.acks[a.Shard]
	if m == nil {
		m = map[peer.ID]ackInfo{}
		s.acks[a.Shard] = m
	}
	p := peer.ID(a.Peer)
	t := time.UnixMilli(a.Time)
	if old, ok := m[p]; ok && !t.After(old.time) {
		return
	}
	m[p] = ackInfo{state: a.State, digest: a.Digest, time: t, seq: a.Seq}
	if row, ok := s.rows[a.Shard]; ok && s.plan != nil {
		row.Holders = s.ackedHoldersLocked(a.Shard)
	}
}

// ackedHoldersLocked counts the peers whose newest ACK of shard id says
// stored and is recent.
func (s *shards) ackedHoldersLocked(id int64) int {
	n := 0
	for _, a := range s.acks[id] {
		if a.state == "stored" {
			n++
		}
	}
	return n
}

func (d *Daemon) readAcks(ctx context.Context) error {
	return readTopic(ctx, d.acks, func(m *pubsub.Message) {
		batch, err := d.book.VerifiedBatch(m)
		if err != nil {
			return
		}
		for _, sa := range batch.Acks {
			if d.book.Accept(sa.Ack, m.ReceivedFrom) == nil {
				d.noteAck(sa.Ack)
			}
		}
	})
}

// readTopic calls f with each message t delivers (its validator passed),
// in order, until ctx ends or the topic closes.
func readTopic(ctx context.Context, t *p2p.Topic, f func(*pubsub.Message)) error {
	sub, err := t.Subscribe()
	if err != nil {
		return err
	}
	defer sub.Close()
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return nil // ctx ended or the topic closed
		}
		f(m)
	}
}

// ShardRows returns the follower's commitments, by shard ID.
func (d *Daemon) ShardRows() []ShardStatus {
	s := d.shards
	s.mu.Lock()
	out := make([]ShardStatus, 0, len(s.rows))
	digests := map[int64][]byte{}
	for _, r := range s.rows {
		row := *r
		row.Holders = s.ackedHoldersLocked(r.ID)
		out = append(out, row)
		if rec, ok := s.records[r.ID]; ok {
			digests[r.ID] = rec.Digest
			if rec.Stored {
				out[len(out)-1].Digest = rec.Digest
			}
		}
	}
	s.mu.Unlock()
	self := string(d.l.ID)
	d.chain.Read(func(l *ledger.Ledger) {
		for i := range out {
			h := l.Holding(self, out[i].ID)
			if h == nil {
				continue
			}
			dg, ok := digests[out[i].ID]
			out[i].Recorded = ok && h.State == ledger.Stored && bytes.Equal(h.Digest, dg)
			out[i].Proven = ok && h.Proven(dg)
			if h.Result != "" {
				out[i].Audit, out[i].AuditedAt, out[i].AuditReason = h.Result, time.UnixMilli(h.AuditTime).UTC(), h.Reason
			}
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Audits returns this follower's audit record, as signed heads record it.
func (d *Daemon) Audits() (r ledger.Member) {
	d.chain.Read(func(l *ledger.Ledger) { r = l.Member(string(d.l.ID)) })
	return r
}
