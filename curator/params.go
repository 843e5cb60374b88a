package curator

import (
	"context"
	"errors"
	"fmt"

	"github.com/pinfold/pinfold/allocation"
	"github.com/pinfold/pinfold/assign"
	"github.com/pinfold/pinfold/configs"
	"github.com/pinfold/pinfold/dag"
	"github.com/pinfold/pinfold/store"
)

// ErrCannotAllocate: the head being built has allocation parameters or
// inputs from which no allocation can be computed. It is not signed.
var ErrCannotAllocate = errors.New("curator: the next head could not be allocated")

// ShardTarget is the shard target a curator config asks for: its
// shard_target, or when that is 0, allocation.DefaultTarget of the
// pledges the members list signs (the median pledge / 200, clamped to
// [1 GiB, 64 GiB]; 1 GiB while there are no members). Members that lost
// their capacity (failing audits) do not count.
//
// Why these bounds: about 200 shards per median pledge keeps each
// member's fill within the 5 % load bound; shards of 1 GiB fit any
// useful pledge, so a cluster of small volunteers still allocates; and
// the 64 GiB ceiling is where an audited copy costs under 0.1 % of its
// bytes a week (docs/audits.md: ~59 MB per copy a week with 1 MiB
// leaves, so 0.09 % at 64 GiB, but 5.5 % at 1 GiB). A cluster of large
// pledges reaches large shards by itself; a small one pays more for
// audits or audits less often.
func ShardTarget(cfg configs.Curator, members []dag.Member) int64 {
	if t := int64(cfg.ShardTarget); t > 0 {
		return t
	}
	var pledges []int64
	for _, m := range members {
		if m.Capacity > 0 {
			pledges = append(pledges, m.Capacity)
		}
	}
	return allocation.DefaultTarget(pledges, 0, 0)
}

// nextParams returns the allocation parameters the next head signs: the
// replication bounds and shard target of config.json (so a curator
// changes them by editing it and restarting the daemon, and a cluster
// whose heads signed a target of 0 is repaired by its next head), and the
// parent's load bound.
func (d *Daemon) nextParams(parent dag.AllocParams, members []dag.Member) dag.AllocParams {
	p := parent
	p.ReplMin = int64(d.l.Config.ReplicationMin)
	p.ReplMax = int64(d.l.Config.ReplicationMax)
	p.ShardTarget = ShardTarget(d.l.Config, members)
	if p.Epsilon <= 0 {
		p.Epsilon = AllocationEpsilon
	}
	return p
}

// checkAllocates computes the allocation of a head's inputs before the
// head is signed, so that no head is published that no follower can
// assign from. It returns the plan, which is the signed head's.
func checkAllocates(memo *allocMemo, seq int64, in assign.Inputs) (*allocation.Plan, error) {
	p, err := memo.compute(in.Input())
	if err != nil {
		return nil, fmt.Errorf("%w: head seq %d: %w (check replication_min, replication_max, shard_target and allocation_version in the curator's config.json)",
			ErrCannotAllocate, seq, err)
	}
	return p, nil
}

// shardTarget is the size new shards are filled to: the one the newest
// head signs, or, for a head that signs none (clusters made before the
// target had a default), what the next head will sign.
func (d *Daemon) shardTarget(ctx context.Context) int64 {
	if v, ok := d.heads.Newest(); ok {
		netDAG := dag.NewStore(store.Network{BS: d.node.BlockService()})
		if a, err := netDAG.Allocation(ctx, v.Head.Allocation); err == nil && a.Params.ShardTarget > 0 {
			return a.Params.ShardTarget
		}
	}
	var members []dag.Member
	for _, m := range d.members.List() {
		if m.State == StateActive || m.State == StateOffline {
			members = append(members, dag.Member{Capacity: m.Pledged})
		}
	}
	return ShardTarget(d.l.Config, members)
}
