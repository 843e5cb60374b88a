package curator

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/assign"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/ledger"
	"github.com/pinfold/pinfold/pinset"
	"github.com/pinfold/pinfold/records"
)

// ackTable holds the newest ACK or release of every (member, shard), as
// the curator received them: who promised what, from which head, when.
type ackTable struct {
	mu     sync.Mutex
	d      ds.Datastore
	latest map[int64]map[peer.ID]dag.Ack
	held   map[peer.ID]int64 // bytes of each member's newest stored ACKs, kept with latest
}

var acksPfx = ds.NewKey("/pinfold/curator/acks")

func openAckTable(ctx context.Context, d ds.Datastore) (*ackTable, error) {
	t := &ackTable{d: d, latest: map[int64]map[peer.ID]dag.Ack{}, held: map[peer.ID]int64{}}
	res, err := d.Query(ctx, query.Query{Prefix: acksPfx.String()})
	if err != nil {
		return nil, fmt.Errorf("load acks: %w", err)
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return nil, fmt.Errorf("load acks: %w", r.Error)
		}
		sa, err := dag.DecodeSignedAck(r.Value)
		if err != nil {
			return nil, fmt.Errorf("load ack %s: %w", r.Key, err)
		}
		t.putLocked(sa.Ack)
	}
	return t, nil
}

func (t *ackTable) putLocked(a dag.Ack) bool {
	m := t.latest[a.Shard]
	if m == nil {
		m = map[peer.ID]dag.Ack{}
		t.latest[a.Shard] = m
	}
	p := peer.ID(a.Peer)
	old, ok := m[p]
	if ok && (old.Seq > a.Seq || (old.Seq == a.Seq && old.Time >= a.Time)) {
		return false
	}
	if ok && old.State == "stored" {
		t.held[p] -= old.Bytes
	}
	if a.State == "stored" {
		t.held[p] += a.Bytes
	}
	if t.held[p] == 0 {
		delete(t.held, p)
	}
	m[p] = a
	return true
}

func (t *ackTable) add(ctx context.Context, sa dag.SignedAck, raw []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.putLocked(sa.Ack) {
		return nil
	}
	key := acksPfx.ChildString(peer.ID(sa.Ack.Peer).String()).ChildString(fmt.Sprint(sa.Ack.Shard))
	return t.d.Put(ctx, key, raw)
}

// seed gives b the newest ACK of every (member, shard), so replays of
// ACKs accepted before a restart are refused after it.
func (t *ackTable) seed(b *records.Book) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.latest {
		for _, a := range m {
			b.Seed(a)
		}
	}
}

// heldBy returns the bytes of p's newest stored ACKs.
func (t *ackTable) heldBy(p peer.ID) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.held[p]
}

func (t *ackTable) get(shard int64, p peer.ID) (dag.Ack, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.latest[shard][p]
	return a, ok
}

// Shard replication states in `curate shards ls`.
const (
	ShardBelowMin = "below-min" // fewer ACKed holders than the minimum
	ShardUnder    = "under"     // at least min, fewer than the target
	ShardAtTarget = "at-target" // as many ACKed holders as the target
	ShardOver     = "over"      // more ACKed copies than the target (a move in progress)
)

// HolderInfo is one holder of a shard as the curator sees it.
type HolderInfo struct {
	Peer     string    `json:"peer"`
	Nickname string    `json:"nickname,omitempty"`
	Assigned bool      `json:"assigned"` // by the newest head's allocation
	State    string    `json:"state"`    // newest ACK: stored, released, or "" for none
	AckSeq   int64     `json:"ack_seq"`
	AckTime  time.Time `json:"ack_time,omitzero"`
	Current  bool      `json:"current"`  // the ACK covers the shard's present content
	Recorded bool      `json:"recorded"` // an ACK of that content is in a signed head's log
	// Proven: a signed head records a passed audit of this copy after its
	// ACK, within the audit period, and no failure since. Only proven
	// copies count as held.
	Proven bool `json:"proven"`
	// Audit is the newest audit result of the copy in the chain ("pass",
	// "fail", or "" for none yet), with its time and, for a failure, why.
	Audit       string    `json:"audit,omitempty"`
	AuditedAt   time.Time `json:"audited_at,omitzero"`
	AuditReason string    `json:"audit_reason,omitempty"`
}

// ShardInfo is one shard's replication status.
type ShardInfo struct {
	ID     int64  `json:"id"`
	Bytes  int64  `json:"bytes"`
	Pins   int64  `json:"pins"`
	Min    int    `json:"min"`
	Max    int    `json:"max"`
	Acked  int    `json:"acked"`  // holders with a current stored ACK: claims
	Proven int    `json:"proven"` // holders whose copy an audit proved: what counts
	Status string `json:"status"` // from the proven holders
	// Since is when this daemon first saw the shard in Status (status is
	// computed when asked for, and the clock restarts with the daemon).
	Since time.Time `json:"since,omitzero"`
	// Problem says what keeps the shard from its target ("" at target).
	Problem string       `json:"problem,omitempty"`
	Holders []HolderInfo `json:"holders"`
}

// shardClock remembers since when each shard has been in its status.
type shardClock struct {
	mu sync.Mutex
	m  map[int64]statusSince
}

type statusSince struct {
	status string
	since  time.Time
}

// mark sets each shard's Since: when its status was first seen, as of
// now. It
// forgets the shards no longer in ss (they left the plan).
func (sc *shardClock) mark(ss []ShardInfo, now time.Time) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	next := make(map[int64]statusSince, len(ss))
	for i := range ss {
		s := &ss[i]
		prev, ok := sc.m[s.ID]
		if !ok || prev.status != s.Status {
			prev = statusSince{s.Status, now}
		}
		next[s.ID] = prev
		s.Since = prev.since
	}
	sc.m = next
}

// markOne sets s.Since as mark does, for one shard, keeping the others.
func (sc *shardClock) markOne(s *ShardInfo, now time.Time) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	prev, ok := sc.m[s.ID]
	if !ok || prev.status != s.Status {
		prev = statusSince{s.Status, now}
		if sc.m == nil {
			sc.m = map[int64]statusSince{}
		}
		sc.m[s.ID] = prev
	}
	s.Since = prev.since
}

// problem says what keeps shard s from its target: no room for more
// holders, holders not ACKing, ACKs waiting for audits, failed audits.
func problem(s ShardInfo) string {
	if s.Status == ShardAtTarget || s.Status == ShardOver {
		return ""
	}
	name := func(h HolderInfo) string {
		switch {
		case h.Nickname != "":
			return h.Nickname
		case len(h.Peer) > 12: // as the CLI shortens peer IDs
			return h.Peer[:4] + "…" + h.Peer[len(h.Peer)-6:]
		}
		return h.Peer
	}
	var assigned int
	var noAck, unproven, failed []string
	for _, h := range s.Holders {
		if !h.Assigned {
			continue
		}
		assigned++
		switch {
		case h.Audit == ledger.Fail && !h.Proven:
			failed = append(failed, name(h)+" ("+h.AuditReason+")")
		case h.State != "stored" || !h.Current:
			noAck = append(noAck, name(h))
		case !h.Proven:
			unproven = append(unproven, name(h))
		}
	}
	var parts []string
	if assigned < s.Max {
		parts = append(parts, fmt.Sprintf("%d of %d holders assigned: not enough members with room for %s", assigned, s.Max, humanize.IBytes(uint64(max(s.Bytes, 0)))))
	}
	if len(failed) > 0 {
		parts = append(parts, "audit failed on "+strings.Join(failed, ", "))
	}
	if len(noAck) > 0 {
		parts = append(parts, "no ACK yet from "+strings.Join(noAck, ", "))
	}
	if len(unproven) > 0 {
		parts = append(parts, "ACKed, audit pending: "+strings.Join(unproven, ", "))
	}
	return strings.Join(parts, "; ")
}

// MemberLoad is one member's commitments: what the allocation gives it
// and what it ACKed.
type MemberLoad struct {
	MemberInfo
	Assigned       int64 `json:"assigned"`
	AssignedShards int   `json:"assigned_shards"`
	Acked          int64 `json:"acked"`
	AckedShards    int   `json:"acked_shards"`
	Proven         int64 `json:"proven"`
	ProvenShards   int   `json:"proven_shards"`
	// Standing is what the member's audit record makes of it (good,
	// probation, failing, expelled), with the reason; Audits is that record.
	Standing    string        `json:"standing"`
	StandingWhy string        `json:"standing_why,omitempty"`
	Audits      ledger.Member `json:"audits"`
}

// plan returns the plan of the newest verified head, from the memo the
// daemon's users of plans share (its status, audits and ACK window).
func (d *Daemon) plan(ctx context.Context) (*allocation.Plan, assign.Inputs, error) {
	v, ok := d.heads.Newest()
	if !ok {
		return nil, assign.Inputs{}, fmt.Errorf("no verified head yet")
	}
	return d.plans.Plan(ctx, d.store.DAG, v.CID, v.Head)
}

// HeadMembers returns how many members the newest head lists. Members
// admitted since then have no part in its allocation until the next head.
func (d *Daemon) HeadMembers(ctx context.Context) (int, error) {
	_, in, err := d.plan(ctx)
	if err != nil {
		return 0, err
	}
	return len(in.Members), nil
}

// currentDigests returns the content digest of every shard from the pinset.
func (d *Daemon) currentDigests(ctx context.Context, ids []int64) (map[int64][]byte, error) {
	out := make(map[int64][]byte, len(ids))
	for _, id := range ids {
		var refs []assign.PinRef
		err := d.pins.ListShard(ctx, id, func(p pinsetPin) error {
			refs = append(refs, assign.PinRef{CID: p.CID.Bytes(), Size: p.Size})
			return nil
		})
		if err != nil {
			return nil, err
		}
		out[id] = assign.Digest(refs)
	}
	return out, nil
}

// proof fills in what the chain records of p's copy of shard, whose
// present content digest is digest: the ACK recorded, the newest audit,
// and whether the copy is proven (a pass within the audit period).
func (d *Daemon) proof(h *HolderInfo, p peer.ID, shard int64, digest []byte) {
	period := time.Duration(d.l.Config.Audit.Interval + d.l.Config.Audit.Grace)
	now := d.now()
	d.chain.Read(func(l *ledger.Ledger) {
		hd := l.Holding(string(p), shard)
		if hd == nil {
			return
		}
		h.Recorded = hd.State == ledger.Stored && bytes.Equal(hd.Digest, digest)
		if hd.Result != "" {
			h.Audit, h.AuditedAt, h.AuditReason = hd.Result, time.UnixMilli(hd.AuditTime).UTC(), hd.Reason
		}
		h.Proven = hd.Proven(digest) && now.Sub(time.UnixMilli(hd.PassTime)) <= period
	})
}

// Shards returns every shard of the newest head with its holders and ACKs.
func (d *Daemon) Shards(ctx context.Context) ([]ShardInfo, error) {
	plan, _, err := d.plan(ctx)
	if err != nil {
		return nil, err
	}
	nick := d.nicknames()
	ids := make([]int64, plan.Len())
	for i := range ids {
		ids[i] = plan.Shard(i).ID
	}
	digests, err := d.currentDigests(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]ShardInfo, 0, plan.Len())
	for i := range plan.Len() {
		sa := plan.Shard(i)
		out = append(out, d.shardInfo(sa, digests[sa.ID], nick))
	}
	d.shardClock.mark(out, d.now())
	return out, nil
}

// shardInfo is one shard of the newest plan with its holders: the ones
// the plan assigns, then any other member whose newest ACK says stored.
// digest is the shard's present content digest; nick names members, and
// is nil when only the shard's status is wanted: its holders are then not
// named (a peer ID's text costs more than the rest, for every holder of
// every shard at every head).
func (d *Daemon) shardInfo(sa allocation.ShardAlloc, digest []byte, nick map[string]string) ShardInfo {
	si := ShardInfo{ID: sa.ID, Bytes: sa.Bytes, Pins: sa.Pins, Min: sa.Min, Max: sa.Max}
	seen := map[peer.ID]bool{}
	addHolder := func(p peer.ID, assigned bool) {
		seen[p] = true
		h := HolderInfo{Assigned: assigned, AckSeq: -1}
		if nick != nil {
			h.Peer = p.String()
			h.Nickname = nick[h.Peer]
		}
		if a, ok := d.ackTab.get(sa.ID, p); ok {
			h.State, h.AckSeq, h.AckTime = a.State, a.Seq, time.UnixMilli(a.Time).UTC()
			h.Current = string(a.Digest) == string(digest)
			if h.State == "stored" && h.Current {
				si.Acked++
			}
		}
		d.proof(&h, p, sa.ID, digest)
		if h.Proven {
			si.Proven++
		}
		si.Holders = append(si.Holders, h)
	}
	for _, h := range sa.Holders {
		addHolder(peer.ID(h), true)
	}
	d.ackTab.mu.Lock()
	var others []peer.ID
	for p, a := range d.ackTab.latest[sa.ID] {
		if !seen[p] && a.State == "stored" {
			others = append(others, p)
		}
	}
	d.ackTab.mu.Unlock()
	sort.Slice(others, func(i, j int) bool { return others[i] < others[j] })
	for _, p := range others {
		addHolder(p, false)
	}
	switch {
	case si.Proven < si.Min:
		si.Status = ShardBelowMin
	case si.Proven < si.Max:
		si.Status = ShardUnder
	case si.Proven == si.Max:
		si.Status = ShardAtTarget
	default:
		si.Status = ShardOver
	}
	si.Problem = problem(si)
	return si
}

// nicknames maps every member's peer ID to its nickname.
func (d *Daemon) nicknames() map[string]string {
	nick := map[string]string{}
	for _, m := range d.members.List() {
		nick[m.Peer] = m.Nickname
	}
	return nick
}

// MemberLoads returns every member with its assigned and ACKed bytes.
func (d *Daemon) MemberLoads(ctx context.Context) ([]MemberLoad, error) {
	shards, err := d.Shards(ctx)
	if err != nil {
		return nil, err
	}
	byPeer := map[string]*MemberLoad{}
	var out []*MemberLoad
	policy := d.auditPolicy()
	for _, m := range d.members.ListAt(d.now()) {
		ml := &MemberLoad{MemberInfo: m}
		if id, err := peer.Decode(m.Peer); err == nil {
			ml.Audits = d.memberRecord(id)
			ml.Audits.Peer = m.Peer // the ledger keys members by their binary ID
			_, ml.Standing, ml.StandingWhy = policy.Standing(m.Pledged, forgive(ml.Audits, m.Forgiven))
		}
		byPeer[m.Peer] = ml
		out = append(out, ml)
	}
	for _, s := range shards {
		for _, h := range s.Holders {
			ml, ok := byPeer[h.Peer]
			if !ok {
				continue
			}
			if h.Assigned {
				ml.Assigned += s.Bytes
				ml.AssignedShards++
			}
			if h.State == "stored" && h.Current {
				ml.Acked += s.Bytes
				ml.AckedShards++
			}
			if h.Proven {
				ml.Proven += s.Bytes
				ml.ProvenShards++
			}
		}
	}
	res := make([]MemberLoad, len(out))
	for i, m := range out {
		res[i] = *m
	}
	return res, nil
}

type pinsetPin = pinset.Pin
