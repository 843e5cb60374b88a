package curator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/assign"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/headsync"
	"github.com/pinfold/pinfold/ledger"
	"github.com/pinfold/pinfold/publish"
	"github.com/pinfold/pinfold/store"
	"github.com/pinfold/pinfold/trust"
)

// publishLoop publishes a head when the pinset, the members or the log
// changed, at most once per HeadInterval, and refreshes the IPNS record
// well before it expires.
func (d *Daemon) publishLoop(ctx context.Context) error {
	interval := time.Duration(d.l.Config.HeadInterval)
	refresh := time.Duration(d.l.Config.RecordValidity) / 4
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	lastRecord := time.Time{}
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-d.wake:
			if wait := interval - d.now().Sub(last); wait > 0 {
				// Changes coalesce: the ticker publishes them.
				continue
			}
		}
		if err := d.members.Expire(ctx, d.now()); err != nil {
			return err
		}
		published, err := d.PublishNow(ctx, false)
		if errors.Is(err, ErrHeadLost) {
			d.log.Info("another curator's head came first; publishing the changes in the next head", "err", err)
			continue
		} else if err != nil {
			d.log.Error("publish head", "err", err)
			continue
		}
		if published {
			last, lastRecord = d.now(), d.now()
			continue
		}
		if d.now().Sub(lastRecord) >= refresh {
			if err := d.refreshRecord(ctx); err != nil {
				d.log.Error("refresh record", "err", err)
				continue
			}
			lastRecord = d.now()
		}
	}
}

// ErrHeadLost: a head this curator built was not adopted, because a newer
// head (another curator's, published at the same time) came first. The
// changes it carried go into the next head.
var ErrHeadLost = errors.New("curator: own head lost to a newer head")

// PublishNow builds, signs and announces a head if anything changed since
// the newest head (or always, with force). It reports whether it did.
func (d *Daemon) PublishNow(ctx context.Context, force bool) (bool, error) {
	return d.publish(ctx, force, nil)
}

// TrustChange adds and removes curator keys with the next head.
type TrustChange struct {
	Add    []peer.ID
	Remove []peer.ID
}

// ChangeTrust publishes a head whose trust set is the newest head's with
// change applied. The head is signed by this curator, which must be in
// the current trust set; once published, a removed key can sign nothing.
func (d *Daemon) ChangeTrust(ctx context.Context, change TrustChange) error {
	for _, id := range append(append([]peer.ID{}, change.Add...), change.Remove...) {
		if !trust.IsEd25519(id) {
			return fmt.Errorf("change trust: %s is not an ed25519 peer ID", id)
		}
	}
	// Another curator's head may come first while this one is built: the
	// change was not published, so it is applied again on that head.
	for try := 1; ; try++ {
		_, err := d.publish(ctx, true, &change)
		if !errors.Is(err, ErrHeadLost) || try == trustTries {
			return err
		}
		d.log.Info("another curator's head came first; applying the trust change to it", "try", try, "err", err)
	}
}

// trustTries bounds how often a trust change is applied again after
// losing to another curator's head.
const trustTries = 5

func applyTrust(set [][]byte, change *TrustChange) ([][]byte, error) {
	m := map[string]bool{}
	for _, t := range set {
		m[string(t)] = true
	}
	for _, id := range change.Add {
		m[string(id)] = true
	}
	for _, id := range change.Remove {
		delete(m, string(id))
	}
	if len(m) == 0 {
		return nil, errors.New("change trust: the trust set would be empty; a cluster needs at least one curator")
	}
	if len(m) > dag.MaxTrust {
		return nil, fmt.Errorf("change trust: %d keys, limit %d", len(m), dag.MaxTrust)
	}
	out := make([][]byte, 0, len(m))
	for k := range m {
		out = append(out, []byte(k))
	}
	slices.SortFunc(out, bytes.Compare)
	return out, nil
}

func (d *Daemon) publish(ctx context.Context, force bool, change *TrustChange) (bool, error) {
	began := time.Now()
	d.publishMu.Lock()
	defer d.publishMu.Unlock()
	locked := time.Now()
	// Counts and shards come from the same moment as the CRDT heads: a
	// head states exactly what its CRDT heads hold, even while an import
	// or a walk is merging. Taken first: it may wait for a walk, and the
	// parent read after it is then the newest.
	snap, err := d.pins.Snapshot(ctx)
	if err != nil {
		return false, fmt.Errorf("read pinset: %w", err)
	}
	snapped := time.Now()
	parent, have := d.heads.Newest()
	if !have {
		return false, nil // no verified head to build on yet
	}
	if !inSet(parent.Head.Trust, d.id) {
		return false, fmt.Errorf("curator %s is not in the trust set of head %s (seq %d)", d.id, parent.CID, parent.Head.Seq)
	}
	// The parent may come from another curator: read its blocks through the
	// network.
	netDAG := dag.NewStore(store.Network{BS: d.node.BlockService()})
	seq := parent.Head.Seq + 1
	parentMembers, err := collect(netDAG.Members(ctx, parent.Head.Members))
	if err != nil {
		return false, fmt.Errorf("read members of %s: %w", parent.CID, err)
	}
	members, err := d.members.Next(ctx, parentMembers, seq, d.auditPolicy(), d.memberRecord)
	if err != nil {
		return false, err
	}
	parentAlloc, err := netDAG.Allocation(ctx, parent.Head.Allocation)
	if err != nil {
		return false, fmt.Errorf("read allocation of %s: %w", parent.CID, err)
	}
	shards := make([]dag.Shard, 0, len(snap.Shards))
	for _, s := range snap.Shards {
		shards = append(shards, dag.Shard{ID: s.Shard, Bytes: s.Bytes, Pins: s.Pins,
			ReplMin: int64(d.l.Config.ReplicationMin), ReplMax: int64(d.l.Config.ReplicationMax)})
	}
	entries, logKeys := d.pending.snapshot()
	alloc := parentAlloc
	alloc.Log = nil
	alloc.Params = d.nextParams(parentAlloc.Params, members)
	if v := d.l.Config.AllocationVersion; v != 0 {
		alloc.AlgVer = int64(v) // the curators chose to move the cluster to v
	}
	var plan *allocation.Plan
	alloc.Overrides, plan = d.keepEstablished(ctx, members, shards, alloc)
	if len(alloc.Overrides) > 0 || plan == nil {
		// The overrides change the plan (or it failed): compute the head's.
		if plan, err = checkAllocates(&d.overridden, seq, assign.Inputs{Members: members, Shards: shards, Allocation: alloc}); err != nil {
			return false, err
		}
	}
	head := dag.Head{
		Version: dag.Version,
		Cluster: parent.Head.Cluster,
		Seq:     seq,
		Parent:  &parent.CID,
		Time:    max(d.now().UnixMilli(), parent.Head.Time),
		Trust:   parent.Head.Trust,
	}
	if change != nil {
		if head.Trust, err = applyTrust(parent.Head.Trust, change); err != nil {
			return false, err
		}
	}
	head, built, err := d.store.DAG.BuildHead(ctx, head, dag.State{
		Pinset:     dag.Pinset{CRDTHeads: snap.Heads, Pins: snap.Pins, Bytes: snap.Bytes},
		Shards:     shards,
		Members:    members,
		Allocation: alloc,
		Log:        entries,
	})
	if err != nil {
		return false, err
	}
	if !force && len(entries) == 0 && head.Pinset.Equals(parent.Head.Pinset) &&
		head.Members.Equals(parent.Head.Members) && head.Allocation.Equals(parent.Head.Allocation) {
		return false, nil
	}
	signed, err := trust.SignHead(d.l.CuratorKey, head)
	if err != nil {
		return false, err
	}
	data, err := dag.EncodeSignedHead(signed)
	if err != nil {
		return false, err
	}
	ann := headsync.Announcement{Head: data}
	if d.l.ClusterKey != nil {
		rec, err := publish.BuildRecord(d.l.ClusterKey, dag.CID(data), uint64(seq), d.now(), recordConfig(d.l.Config))
		if err != nil {
			return false, err
		}
		ann.Record = rec.Raw
	}
	// Verify our own head as every follower will before announcing it.
	built0 := time.Now()
	if d.beforeVerify != nil {
		d.beforeVerify()
	}
	out, err := d.heads.Consider(ctx, ann, headsync.FromLocal, d.id)
	if errors.Is(err, trust.ErrStaleSeq) {
		// Another curator published more than one head meanwhile.
		return false, fmt.Errorf("own head %s: %w: %w", dag.CID(data), ErrHeadLost, err)
	}
	if err != nil {
		return false, fmt.Errorf("verify own head: %w", err)
	}
	if out != headsync.Adopted {
		return false, fmt.Errorf("own head %s was %s, not adopted: %w", dag.CID(data), out, ErrHeadLost)
	}
	verified := time.Now()
	if err := d.store.Datastore.Sync(ctx, dsRoot); err != nil {
		return false, err
	}
	if err := d.pending.done(ctx, logKeys); err != nil {
		return false, err
	}
	if err := d.writeRecordFile(); err != nil {
		d.log.Error("write record file", "err", err)
	}
	alloc.Log = built.Log
	d.plans.Put(dag.CID(data), plan, assign.Inputs{Members: members, Shards: shards, Allocation: alloc}) // before the window asks for it
	if err := d.hnet.Announce(ctx); err != nil {
		d.log.Warn("announce head", "err", err)
	}
	done := time.Now()
	ms := func(a, b time.Time) int64 { return b.Sub(a).Milliseconds() }
	d.log.Info("published head", "cid", dag.CID(data), "seq", seq, "pins", snap.Pins, "members", len(members), "log", len(entries),
		"took_ms", ms(began, done), "lock_ms", ms(began, locked), "snapshot_ms", ms(locked, snapped),
		"build_ms", ms(snapped, built0), "verify_ms", ms(built0, verified), "announce_ms", ms(verified, done))
	d.recent.addHead(PublishedHead{CID: dag.CID(data).String(), Seq: seq, Time: time.UnixMilli(head.Time).UTC(),
		Pins: snap.Pins, Members: len(members), Log: len(entries)})
	return true, nil
}

// auditPolicy is the curator config's audit policy.
func (d *Daemon) auditPolicy() AuditPolicy {
	a := d.l.Config.Audit
	return AuditPolicy{FailAfter: int64(a.FailAfter), RemoveAfter: int64(a.RemoveAfter), ProbationStart: int64(a.ProbationStart)}
}

// memberRecord is p's audit record in the chain.
func (d *Daemon) memberRecord(p peer.ID) (r ledger.Member) {
	d.chain.Read(func(l *ledger.Ledger) { r = l.Member(string(p)) })
	return r
}

// refreshRecord re-signs the IPNS record of the newest head with a new
// validity and announces it.
func (d *Daemon) refreshRecord(ctx context.Context) error {
	if d.l.ClusterKey == nil {
		return nil
	}
	a, ok := d.heads.Announcement()
	if !ok {
		return nil
	}
	v, _ := d.heads.Newest()
	rec, err := publish.BuildRecord(d.l.ClusterKey, v.CID, uint64(v.Head.Seq), d.now(), recordConfig(d.l.Config))
	if err != nil {
		return err
	}
	a.Record = rec.Raw
	if _, err := d.heads.Consider(ctx, a, headsync.FromLocal, d.id); err != nil {
		return err
	}
	if err := d.writeRecordFile(); err != nil {
		return err
	}
	return d.hnet.Announce(ctx)
}

func (d *Daemon) writeRecordFile() error {
	rec, ok := d.heads.Record()
	if !ok {
		return nil
	}
	return publish.WriteRecordFile(d.l.Home.RecordPath(d.name), rec.Raw)
}

func inSet(set [][]byte, id peer.ID) bool {
	for _, t := range set {
		if peer.ID(t) == id {
			return true
		}
	}
	return false
}

// dsRoot syncs the whole datastore.
var dsRoot = ds.NewKey("/")

// collect gathers an iterator's items, stopping at the first error.
func collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
