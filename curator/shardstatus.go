package curator

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"
)

// shardStatuses counts the shards of the newest head by replication
// status (ShardBelowMin ... ShardOver), for the metrics: counted after
// each head the curator adopts and each log it applies, and once a
// minute (a pass expires with time), never on a scrape. The content
// digests of the shards, which take a walk of the pinset, are read again
// only when a head changes the pinset.
type shardStatuses struct {
	mu      sync.Mutex
	counts  map[string]int // nil until the first count
	pinset  cid.Cid        // the pinset digests were read from
	digests map[int64][]byte
}

// ShardStatusCounts returns the shards of the newest head by replication
// status, as of the last count, and whether there was one.
func (d *Daemon) ShardStatusCounts() (map[string]int, bool) {
	d.statuses.mu.Lock()
	defer d.statuses.mu.Unlock()
	if d.statuses.counts == nil {
		return nil, false
	}
	return maps.Clone(d.statuses.counts), true
}

// Metrics returns the registry the daemon serves at /metrics.
func (d *Daemon) Metrics() prometheus.Gatherer { return d.metrics }

// countShardsLoop keeps the counts of ShardStatusCounts until ctx ends.
func (d *Daemon) countShardsLoop(ctx context.Context) error {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		heads, chain := d.heads.Changed(), d.chain.Changed()
		if err := d.countShards(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("count shards by status", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-heads:
		case <-chain:
		case <-tick.C:
		}
	}
}

func (d *Daemon) countShards(ctx context.Context) error {
	v, ok := d.heads.Newest()
	if !ok {
		return nil
	}
	plan, _, err := d.plan(ctx)
	if err != nil {
		return err
	}
	d.statuses.mu.Lock()
	digests, same := d.statuses.digests, d.statuses.pinset.Equals(v.Head.Pinset)
	d.statuses.mu.Unlock()
	if !same {
		ids := make([]int64, plan.Len())
		for i := range ids {
			ids[i] = plan.Shard(i).ID
		}
		if digests, err = d.currentDigests(ctx, ids); err != nil {
			return err
		}
	}
	counts := map[string]int{ShardBelowMin: 0, ShardUnder: 0, ShardAtTarget: 0, ShardOver: 0}
	for i := range plan.Len() {
		sa := plan.Shard(i)
		counts[d.shardInfo(sa, digests[sa.ID], nil).Status]++
	}
	d.statuses.mu.Lock()
	d.statuses.counts, d.statuses.pinset, d.statuses.digests = counts, v.Head.Pinset, digests
	d.statuses.mu.Unlock()
	return nil
}
