package curator

import (
	"bytes"
	"context"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/assign"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/ledger"
)

// keepEstablished returns the overrides of the next head: for every shard
// whose plan would leave it only with members that are unproven for it
// (no passed audit of their copy) or not in good standing (probation,
// failing), while a member in good standing holds a proven copy, that
// member is pinned to it, so it keeps the shard until a new holder is
// proven. Shards whose content this curator stores itself need no such
// pin: the curator is their established holder. Overrides are recomputed
// for every head; none carries over. It also returns the plan without
// overrides (nil if it cannot be computed): when no override is needed,
// that is the head's plan, and the head need not compute it again.
func (d *Daemon) keepEstablished(ctx context.Context, members []dag.Member, shards []dag.Shard, alloc dag.Allocation) ([]dag.Override, *allocation.Plan) {
	alloc.Overrides = nil
	plan, err := d.allocs.compute(assign.Inputs{Members: members, Shards: shards, Allocation: alloc}.Input())
	if err != nil {
		return nil, nil // the head's own check reports it
	}
	good := d.goodStanding(members)
	var holdings map[int64][]ledger.Holding
	d.chain.Read(func(l *ledger.Ledger) {
		holdings = map[int64][]ledger.Holding{}
		l.Each(func(h ledger.Holding) {
			if h.State == ledger.Stored && good[h.Peer] && h.Proven(h.Digest) {
				holdings[h.Shard] = append(holdings[h.Shard], h)
			}
		})
	})
	out := pinEstablished(plan, holdings, func(id int64) []byte { return d.shardDigest(ctx, id) },
		func(id int64) bool { return d.holdsShard(ctx, id) })
	if len(out) > 0 {
		d.log.Info("keeping established holders on shards whose new holders are unproven", "shards", len(out))
	}
	return out, plan
}

// pinEstablished is the decision of keepEstablished, a pure function of
// the plan, the proven copies of members in good standing (holdings, per
// shard, each proven for the digest it ACKed), the shards' present
// digests and whether the curator stores a shard itself: for each shard
// that no planned holder holds a proven copy of, the established member
// with the smallest peer ID holding a proven copy of the present content
// is pinned to it, unless the curator keeps the shard itself. Digests and
// the curator's store are only asked about for those shards. The
// overrides are sorted by shard.
func pinEstablished(plan *allocation.Plan, holdings map[int64][]ledger.Holding, digest func(int64) []byte, curatorHolds func(int64) bool) []dag.Override {
	var out []dag.Override
	for i := range plan.Len() {
		sa := plan.Shard(i)
		hs := holdings[sa.ID]
		if len(hs) == 0 {
			continue // nobody established to keep it
		}
		if slices.ContainsFunc(sa.Holders, func(p []byte) bool {
			return slices.ContainsFunc(hs, func(h ledger.Holding) bool { return h.Peer == string(p) })
		}) {
			continue // an established holder keeps it
		}
		cur := digest(sa.ID)
		var keep []byte
		for _, h := range hs {
			if cur != nil && bytes.Equal(h.Digest, cur) && (keep == nil || bytes.Compare([]byte(h.Peer), keep) < 0) {
				keep = []byte(h.Peer)
			}
		}
		if keep == nil || curatorHolds(sa.ID) {
			continue
		}
		out = append(out, dag.Override{Shard: sa.ID, Pin: [][]byte{keep}, Exclude: [][]byte{}})
	}
	return out
}

// goodStanding returns the members of the next head in good standing:
// capacity not capped by probation or audits.
func (d *Daemon) goodStanding(members []dag.Member) map[string]bool {
	reg := map[string]MemberInfo{}
	for _, m := range d.members.List() {
		reg[m.Peer] = m
	}
	policy := d.auditPolicy()
	out := map[string]bool{}
	for _, m := range members {
		id := peer.ID(m.Peer)
		mi, known := reg[id.String()]
		if !known || m.Capacity == 0 {
			continue
		}
		if _, standing, _ := policy.Standing(mi.Pledged, forgive(d.memberRecord(id), mi.Forgiven)); standing == StandingGood {
			out[string(m.Peer)] = true
		}
	}
	return out
}

// shardDigest is the content digest of shard's present pins, or nil.
func (d *Daemon) shardDigest(ctx context.Context, shard int64) []byte {
	m, err := d.currentDigests(ctx, []int64{shard})
	if err != nil {
		return nil
	}
	return m[shard]
}

// holdsShard reports whether this curator's own store has the root of
// every pin of shard (content it added itself).
func (d *Daemon) holdsShard(ctx context.Context, shard int64) bool {
	all, any := true, false
	err := d.pins.ListShard(ctx, shard, func(p pinsetPin) error {
		any = true
		if ok, err := d.store.Blocks.Has(ctx, p.CID); err != nil || !ok {
			all = false
		}
		return nil
	})
	return err == nil && any && all
}
